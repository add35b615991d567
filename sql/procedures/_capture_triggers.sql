-- Every change-capture trigger that migrate installs, how to create it, and how the one on the
-- table (if any) compares. A trigger is trusted by its definition, never by its name: the
-- tables' owner can replace pipeline_capture_update with a trigger of the same name that calls
-- a no-op. as_installed = same function, events, level (statement or row), timing (after),
-- arguments, transition tables, WHEN clause and no column list as migrate's.
-- purpose: 'origin' triggers must fire for ordinary writes (enabled O or A); 'truncate' also
-- needs A, and 'replica' R or A, for writes made in session_replication_role = replica (the
-- logical replication apply worker fires row triggers only, and statement-level TRUNCATE ones).
-- ddl: CREATE OR REPLACE TRIGGER with %1$s for the table.
CREATE OR REPLACE FUNCTION pipeline._capture_triggers()
RETURNS TABLE (table_name text, trigger_name text, purpose text, ddl text,
               found boolean, as_installed boolean, enabled "char")
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH spec (table_name, trigger_name, purpose, tgtype, func, args, old_table, new_table, when_clause, ddl) AS (
        SELECT w.table_name, s.*
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_truncate', 'truncate', 32, 'pipeline._capture_changes()',
             ARRAY['full'], NULL, NULL, NULL,
             'AFTER TRUNCATE ON %1$s FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes(''full'')'),
            ('pipeline_capture_replica', 'replica', 1 | 4 | 8 | 16, 'pipeline._capture_row_change()',
             CASE WHEN w.kind = 'full' THEN ARRAY['full'] ELSE ARRAY[w.kind, w.key_column] END,
             NULL, NULL,
             '(current_setting(''session_replication_role''::text) = ''replica''::text)',
             'AFTER INSERT OR UPDATE OR DELETE ON %1$s FOR EACH ROW '
             'WHEN (pg_catalog.current_setting(''session_replication_role'') = ''replica'') '
             || format('EXECUTE FUNCTION pipeline._capture_row_change(%s)',
                       CASE WHEN w.kind = 'full' THEN quote_literal('full')
                            ELSE quote_literal(w.kind) || ', ' || quote_literal(w.key_column) END))
        ) AS s
        UNION ALL
        SELECT w.table_name, s.*
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_changes', 'origin', 4 | 8 | 16, 'pipeline._capture_changes()',
             ARRAY['full'], NULL, NULL, NULL,
             'AFTER INSERT OR UPDATE OR DELETE ON %1$s FOR EACH STATEMENT '
             'EXECUTE FUNCTION pipeline._capture_changes(''full'')')
        ) AS s
        WHERE w.kind = 'full'
        UNION ALL
        SELECT w.table_name, s.trigger_name, 'origin', s.tgtype, 'pipeline._capture_changes()',
               ARRAY[w.kind, w.key_column], s.old_table, s.new_table, NULL,
               format('AFTER %s ON %%1$s REFERENCING %s FOR EACH STATEMENT '
                      'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                      s.event, s.referencing, w.kind, w.key_column)
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_insert', 4, 'INSERT', NULL, 'new_rows', 'NEW TABLE AS new_rows'),
            ('pipeline_capture_update', 16, 'UPDATE', 'old_rows', 'new_rows',
             'OLD TABLE AS old_rows NEW TABLE AS new_rows'),
            ('pipeline_capture_delete', 8, 'DELETE', 'old_rows', NULL, 'OLD TABLE AS old_rows')
        ) AS s (trigger_name, tgtype, event, old_table, new_table, referencing)
        WHERE w.kind <> 'full'
    )
    SELECT s.table_name, s.trigger_name, s.purpose, 'CREATE OR REPLACE TRIGGER ' || s.trigger_name || ' ' || s.ddl,
           tg.oid IS NOT NULL,
           coalesce(tg.tgfoid = s.func::regprocedure
                    AND tg.tgtype = s.tgtype
                    AND tg.tgargs = coalesce((SELECT string_agg(convert_to(a, 'UTF8') || decode('00', 'hex'), ''::bytea)
                                              FROM unnest(s.args) AS a), ''::bytea)
                    AND tg.tgoldtable IS NOT DISTINCT FROM s.old_table::name
                    AND tg.tgnewtable IS NOT DISTINCT FROM s.new_table::name
                    AND pg_get_expr(tg.tgqual, tg.tgrelid) IS NOT DISTINCT FROM s.when_clause
                    AND cardinality(tg.tgattr::int2[]) = 0
                    AND tg.tgconstraint = 0,
                    false),
           tg.tgenabled
    FROM spec AS s
    LEFT JOIN pg_trigger AS tg
        ON tg.tgrelid = to_regclass(s.table_name) AND tg.tgname = s.trigger_name;
END;
$$;

COMMENT ON FUNCTION pipeline._capture_triggers() IS
    'Each change-capture trigger migrate installs (and its DDL), and whether the table has it exactly so.';
