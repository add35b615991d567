-- Refuse to read a source relation through which code of its owner would run with the rights
-- of pipeline_owner (a run's steps are SECURITY DEFINER): a row-level security policy (its
-- expression, and any function it calls, runs as the reading role), a view (its functions), a
-- foreign table (its wrapper) or a materialized view, also as a child or partition of a source
-- table. Called by pipeline._execute_run, as pipeline_owner, before the run reads anything;
-- _execute_run also pins row_security = off, so a policy missed here raises an error, never runs.
-- It also refuses an index, extended statistics object or CHECK constraint on a source table
-- whose expressions call a function of a role that is not a superuser (the planner evaluates
-- them), and a column the run reads whose type is not the catalog's integer or text
-- (pipeline._source_columns), since a type of the owner's can carry a cast of the owner's.
-- A table whose RLS does not apply to pipeline_owner (it has BYPASSRLS, or owns the table
-- without FORCE ROW LEVEL SECURITY) is read like any other: no policy runs for it.
CREATE OR REPLACE FUNCTION pipeline._check_source_tables()
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_relation record;
BEGIN
    FOR v_relation IN
        SELECT s.relation::text AS name, s.reached_from, c.relkind, c.relowner::regrole::text AS owner,
               c.relrowsecurity AND c.relforcerowsecurity AS forced,
               -- the condition under which PostgreSQL applies the table's policies to this role
               c.relrowsecurity
                   AND NOT (SELECT r.rolbypassrls FROM pg_roles AS r WHERE r.rolname = current_user)
                   AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AS policies_apply
        FROM pipeline._source_relations() AS s JOIN pg_class AS c ON c.oid = s.relation
        ORDER BY 1
    LOOP
        IF v_relation.relkind NOT IN ('r', 'p') THEN
            RAISE EXCEPTION 'source relation % (%) is a %, not a table: a run reads only tables, so that no code '
                            'of its owner (%) runs with the rights of %; make it a plain table holding the rows',
                            v_relation.name,
                            CASE WHEN v_relation.name = v_relation.reached_from THEN 'read by every run'
                                 ELSE 'read as part of ' || v_relation.reached_from END,
                            CASE v_relation.relkind WHEN 'v' THEN 'view' WHEN 'f' THEN 'foreign table'
                                                    WHEN 'm' THEN 'materialized view' ELSE 'relation of kind '
                                                    || v_relation.relkind::text END,
                            v_relation.owner, current_user
                USING ERRCODE = 'wrong_object_type',
                      HINT = format('Make %s a plain table holding the rows, or run the pipeline on a database '
                                    'where it is one.', v_relation.name);
        ELSIF v_relation.policies_apply THEN
            -- The fix is in the message: a run's failure keeps its message, not its hint.
            RAISE EXCEPTION 'source table % has row-level security that applies to %, so its policies would run '
                            'with that role''s rights (and show a run only some rows): let it read every row, '
                            'either with ALTER ROLE % BYPASSRLS (a superuser) or with ALTER TABLE % DISABLE ROW '
                            'LEVEL SECURITY (its owner, %); a policy for % does not help, the run reads with '
                            'row_security = off', v_relation.name, current_user, current_user, v_relation.name,
                            v_relation.owner, current_user
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('ALTER ROLE %I BYPASSRLS;', current_user);
        END IF;
    END LOOP;
    -- A column of a type of the owner's could carry a cast of the owner's, which reading it
    -- would run with pipeline_owner's rights: only the catalog's integer, text and timestamptz types are read.
    -- First: an index on such a column is refused below too, less plainly.
    FOR v_relation IN
        SELECT c.table_name, c.column_name, c.kind, format_type(a.atttypid, a.atttypmod) AS type_name,
               pg_get_userbyid(ty.typowner) AS type_owner
        FROM pipeline._source_columns() AS c
        JOIN pg_catalog.pg_attribute AS a
          ON a.attrelid = to_regclass(c.table_name) AND a.attname = c.column_name AND NOT a.attisdropped
        JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid
        WHERE NOT pipeline._column_has_kind(to_regclass(c.table_name), c.column_name, c.kind)
        ORDER BY 1, 2
    LOOP
        RAISE EXCEPTION 'source column %.% has type % (owned by %), not a built-in % type: a run reads only '
                        'the catalog''s types, so that no cast of another role runs with the rights of %; '
                        'make it bigint, integer or smallint (text, varchar or char for a slug, timestamptz '
                        'for a survey result''s time)',
                        v_relation.table_name, v_relation.column_name, v_relation.type_name,
                        v_relation.type_owner, v_relation.kind, current_user
            USING ERRCODE = 'datatype_mismatch',
                  HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE %s (its owner).', v_relation.table_name,
                                v_relation.column_name,
                                CASE v_relation.kind WHEN 'integer' THEN 'bigint' WHEN 'timestamptz' THEN 'timestamptz'
                                                     ELSE 'text' END);
    END LOOP;
    -- The planner evaluates parts of a table's index expressions and predicates, extended
    -- statistics, CHECK constraints and partition key while it plans a read, and estimates their
    -- clauses: a function of a role that is not a superuser there (directly, behind an operator,
    -- in a domain or range type, or the subtype_diff of a column's range type) would run with
    -- pipeline_owner's rights.
    FOR v_relation IN
        SELECT c.relation::text AS table_name, c.what, c.called, c.called_owner
        FROM pipeline._source_relations_planned_calls() AS c
        ORDER BY 1, 2
    LOOP
        RAISE EXCEPTION 'source table %: its % uses %, of role %: planning a read would run its code '
                        'with the rights of %; drop it, or have a superuser own the %',
                        v_relation.table_name, v_relation.what, v_relation.called, v_relation.called_owner,
                        current_user, split_part(v_relation.called, ' ', 1)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Drop the %s, or ALTER %s %s OWNER TO a superuser.',
                                split_part(v_relation.what, ' (', 1), upper(split_part(v_relation.called, ' ', 1)),
                                substr(v_relation.called, strpos(v_relation.called, ' ') + 1));
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._check_source_tables() IS
    'Raises an error naming the relation and the fix when a source table is not a plain table, or has '
    'row-level security that applies to the run''s role, so that no code of its owner runs with that role''s rights.';
