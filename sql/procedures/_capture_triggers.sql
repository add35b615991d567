-- Every change-capture trigger that migrate installs, how to create it, and how the one on the
-- table (if any) compares. A trigger is trusted by its definition, never by its name: the
-- tables' owner can replace pipeline_capture_update with a trigger of the same name that calls
-- a no-op. as_installed = same function, events, level (statement or row), timing (after),
-- arguments, transition tables, WHEN clause and no column list as migrate's.
-- purpose: 'origin' triggers must fire for ordinary writes (enabled O or A); 'truncate' also
-- needs A, and 'replica' R or A, for writes made in session_replication_role = replica (the
-- logical replication apply worker fires row triggers only, and statement-level TRUNCATE ones).
-- pipeline.install_change_capture() holds the DDL that creates each; a test checks that what
-- it creates is as_installed here.
CREATE OR REPLACE FUNCTION pipeline._capture_triggers()
RETURNS TABLE (table_name text, trigger_name text, purpose text,
               found boolean, as_installed boolean, enabled "char")
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH spec (table_name, trigger_name, purpose, tgtype, func, args, old_table, new_table, when_clause) AS (
        SELECT w.table_name, s.*
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_truncate', 'truncate', 32, 'pipeline._capture_changes()',
             ARRAY['full'], NULL, NULL, NULL),
            ('pipeline_capture_replica', 'replica', 1 | 4 | 8 | 16, 'pipeline._capture_row_change()',
             CASE WHEN w.kind = 'full' THEN ARRAY['full'] ELSE ARRAY[w.kind, w.key_column] END,
             NULL, NULL,
             '(current_setting(''session_replication_role''::text) = ''replica''::text)')
        ) AS s
        UNION ALL
        SELECT w.table_name, s.*
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_changes', 'origin', 4 | 8 | 16, 'pipeline._capture_changes()',
             ARRAY['full'], NULL, NULL, NULL)
        ) AS s
        WHERE w.kind = 'full'
        UNION ALL
        SELECT w.table_name, s.trigger_name, 'origin', s.tgtype, 'pipeline._capture_changes()',
               ARRAY[w.kind, w.key_column], s.old_table, s.new_table, NULL
        FROM pipeline._change_capture_tables() AS w
        CROSS JOIN LATERAL (VALUES
            ('pipeline_capture_insert', 4, NULL, 'new_rows'),
            ('pipeline_capture_update', 16, 'old_rows', 'new_rows'),
            ('pipeline_capture_delete', 8, 'old_rows', NULL)
        ) AS s (trigger_name, tgtype, old_table, new_table)
        WHERE w.kind <> 'full'
    )
    SELECT s.table_name, s.trigger_name, s.purpose,
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
    'Each change-capture trigger migrate installs, and whether the table has it exactly so.';
