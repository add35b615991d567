-- The functions of roles that are not superusers which the planner would call, with the
-- rights of the reading role, while it plans a read of a source relation: those in its index
-- expressions and predicates, extended statistics and CHECK constraints (directly, or behind
-- an operator). The planner folds their constant parts, so a function there runs even if no
-- row is read. Invalid indexes are included: REINDEX makes one valid without any DDL event.
CREATE OR REPLACE FUNCTION pipeline._source_relations_planned_calls()
RETURNS TABLE (relation regclass, what text, function_name text, function_owner text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
    WITH planned (relation, what, classid, objid) AS (
        SELECT s.relation, format('index %s', x.indexrelid::regclass), 'pg_catalog.pg_class'::regclass, x.indexrelid
        FROM pipeline._source_relations() AS s JOIN pg_catalog.pg_index AS x ON x.indrelid = s.relation
        UNION ALL
        SELECT s.relation, format('statistics object %s', quote_ident(st.stxname)),
               'pg_catalog.pg_statistic_ext'::regclass, st.oid
        FROM pipeline._source_relations() AS s JOIN pg_catalog.pg_statistic_ext AS st ON st.stxrelid = s.relation
        UNION ALL
        SELECT s.relation, format('constraint %s', quote_ident(c.conname)), 'pg_catalog.pg_constraint'::regclass, c.oid
        FROM pipeline._source_relations() AS s
        JOIN pg_catalog.pg_constraint AS c ON c.conrelid = s.relation AND c.contype = 'c'
    ),
    called (relation, what, function_oid) AS (
        SELECT p.relation, p.what, d.refobjid
        FROM planned AS p JOIN pg_catalog.pg_depend AS d ON d.classid = p.classid AND d.objid = p.objid
        WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
        UNION ALL
        SELECT p.relation, p.what, o.oprcode::oid
        FROM planned AS p JOIN pg_catalog.pg_depend AS d ON d.classid = p.classid AND d.objid = p.objid
        JOIN pg_catalog.pg_operator AS o ON o.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass
    )
    SELECT c.relation, c.what, f.oid::regprocedure::text, pg_catalog.pg_get_userbyid(f.proowner)::text
    FROM called AS c JOIN pg_catalog.pg_proc AS f ON f.oid = c.function_oid
    WHERE NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.oid = f.proowner)
$$;

COMMENT ON FUNCTION pipeline._source_relations_planned_calls() IS
    'Functions of roles that are not superusers which planning a read of a source relation would call.';
