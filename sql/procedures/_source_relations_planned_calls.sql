-- The code of roles that are not superusers which the planner would run, with the rights of
-- the reading role, while it plans a read of a source relation: a function or operator (with
-- its commutator and negator) in its index expressions and predicates, extended statistics,
-- CHECK constraints or partition key,
-- and a domain or range type they use (a domain's CHECK constraints, which its owner may change
-- at any time, and a range's subtype_diff are code too). The planner folds the constant parts
-- of those expressions, so the code runs even if no row is read. A column they name counts by
-- what its type runs: estimating a clause on a range column (a partial index's predicate, which
-- the planner costs whenever a read's own clause implies it) calls the range's subtype_diff, so
-- that function counts, for a range column and for one whose type contains a range (through a
-- multirange, domain, array or composite). Nothing else a column's type may hold is code a role
-- that is not a superuser can write (operator classes, I/O and analyze functions need one), and
-- a stored value is never converted into a domain. Invalid indexes are included: REINDEX makes
-- one valid without any DDL event.
CREATE OR REPLACE FUNCTION pipeline._source_relations_planned_calls()
RETURNS TABLE (relation regclass, what text, called text, called_owner text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
    WITH RECURSIVE planned (relation, what, classid, objid) AS (
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
        UNION ALL
        SELECT s.relation, 'partition key', 'pg_catalog.pg_class'::regclass, s.relation
        FROM pipeline._source_relations() AS s JOIN pg_catalog.pg_partitioned_table AS k ON k.partrelid = s.relation
    ),
    referenced (relation, what, refclassid, refobjid, refobjsubid) AS (
        SELECT p.relation, p.what, d.refclassid, d.refobjid, d.refobjsubid
        FROM planned AS p
        JOIN pg_catalog.pg_depend AS d ON d.classid = p.classid AND d.objid = p.objid AND d.objsubid = 0
    ),
    -- the types of the columns they name, and the types those are made of
    column_type (relation, what, type_oid) AS (
        SELECT r.relation, format('%s (column %s)', r.what, quote_ident(a.attname)), a.atttypid
        FROM referenced AS r
        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = r.refobjid AND a.attnum = r.refobjsubid
        WHERE r.refclassid = 'pg_catalog.pg_class'::regclass AND r.refobjsubid > 0
        UNION ALL
        -- a partition key's columns, plain or in its expressions, which pg_depend records the
        -- other way round (the column depends on its table)
        SELECT s.relation, format('partition key (column %s)', quote_ident(a.attname)), a.atttypid
        FROM pipeline._source_relations() AS s
        JOIN pg_catalog.pg_partitioned_table AS k ON k.partrelid = s.relation
        JOIN pg_catalog.pg_depend AS d
          ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.relation AND d.objsubid > 0
         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = s.relation AND d.refobjsubid = 0
         AND d.deptype = 'i'
        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = s.relation AND a.attnum = d.objsubid
        UNION
        SELECT c.relation, c.what, n.type_oid
        FROM column_type AS c
        JOIN pg_catalog.pg_type AS t ON t.oid = c.type_oid
        CROSS JOIN LATERAL (SELECT nullif(t.typbasetype, 0)
                            UNION ALL SELECT CASE WHEN t.typcategory = 'A' THEN nullif(t.typelem, 0) END
                            UNION ALL SELECT g.rngsubtype FROM pg_catalog.pg_range AS g WHERE g.rngtypid = t.oid
                            UNION ALL SELECT g.rngtypid FROM pg_catalog.pg_range AS g WHERE g.rngmultitypid = t.oid
                            UNION ALL SELECT f.atttypid FROM pg_catalog.pg_attribute AS f
                                      WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0
                                        AND NOT f.attisdropped) AS n (type_oid)
        WHERE n.type_oid IS NOT NULL
    ),
    called (relation, what, called, owner) AS (
        SELECT r.relation, r.what, 'function ' || f.oid::regprocedure::text, f.proowner
        FROM referenced AS r JOIN pg_catalog.pg_proc AS f ON f.oid = r.refobjid
        WHERE r.refclassid = 'pg_catalog.pg_proc'::regclass
        UNION ALL
        -- an operator, its commutator and its negator (the planner swaps in either while it
        -- estimates or simplifies a clause), each as itself and as its function
        SELECT r.relation, r.what, u.called, u.owner
        FROM referenced AS r JOIN pg_catalog.pg_operator AS o ON o.oid = r.refobjid
        CROSS JOIN LATERAL unnest(ARRAY[o.oid, o.oprcom, o.oprnegate]) AS l (operator_oid)
        JOIN pg_catalog.pg_operator AS used ON used.oid = l.operator_oid
        JOIN pg_catalog.pg_proc AS f ON f.oid = used.oprcode
        CROSS JOIN LATERAL (VALUES ('operator ' || used.oid::regoperator::text, used.oprowner),
                                   ('function ' || f.oid::regprocedure::text, f.proowner)) AS u (called, owner)
        WHERE r.refclassid = 'pg_catalog.pg_operator'::regclass
        UNION ALL
        SELECT r.relation, r.what, 'type ' || format_type(t.oid, NULL), t.typowner
        FROM referenced AS r JOIN pg_catalog.pg_type AS t ON t.oid = r.refobjid
        LEFT JOIN pg_catalog.pg_type AS e ON e.oid = t.typelem AND t.typcategory = 'A'
        WHERE r.refclassid = 'pg_catalog.pg_type'::regclass
          AND (t.typtype IN ('d', 'r', 'm') OR e.typtype IN ('d', 'r', 'm'))
        UNION ALL
        -- a range's subtype_diff (reached through a multirange, domain, array or composite too)
        SELECT c.relation, c.what, 'function ' || f.oid::regprocedure::text, f.proowner
        FROM column_type AS c
        JOIN pg_catalog.pg_range AS g ON g.rngtypid = c.type_oid
        JOIN pg_catalog.pg_proc AS f ON f.oid = g.rngsubdiff
    )
    SELECT c.relation, c.what, c.called, pg_catalog.pg_get_userbyid(c.owner)::text
    FROM called AS c
    WHERE NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.oid = c.owner)
$$;

COMMENT ON FUNCTION pipeline._source_relations_planned_calls() IS
    'Functions, operators, domains and range types of roles that are not superusers which planning a read of a source '
    'relation would run, with the object (index, statistics, constraint, partition key; and column) that would run them.';
