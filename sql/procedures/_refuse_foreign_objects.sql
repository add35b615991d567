-- Refuse to run while schema pipeline holds an object of another role, or another role may
-- create objects in it: every routine's search_path names pipeline, so a function there with a
-- closer match than the catalog's (cardinality(text[]) beside cardinality(anyarray)) would be
-- called by runs with the owner's rights. migrate refuses the same; this catches a grant or an
-- object made since. Reads only the catalog, with operators on oid types whose exact match the
-- catalog holds (it wins over any other schema's), so nothing planted can run before it.
CREATE OR REPLACE FUNCTION pipeline._refuse_foreign_objects()
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_schema oid := 'pipeline'::regnamespace;
    v_owner oid;
    v_found record;
BEGIN
    SELECT n.nspowner INTO v_owner FROM pg_catalog.pg_namespace AS n WHERE n.oid = v_schema;
    SELECT x.kind, x.name, pg_catalog.pg_get_userbyid(x.owner) AS owner INTO v_found
    FROM (
        SELECT 'function'::text AS kind, p.oid::regprocedure::text AS name, p.proowner AS owner
        FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = v_schema
        UNION ALL
        SELECT 'relation', c.oid::regclass::text, c.relowner
        FROM pg_catalog.pg_class AS c WHERE c.relnamespace = v_schema
        UNION ALL
        SELECT 'type', t.oid::regtype::text, t.typowner
        FROM pg_catalog.pg_type AS t WHERE t.typnamespace = v_schema
        UNION ALL
        SELECT 'operator', o.oid::regoperator::text, o.oprowner
        FROM pg_catalog.pg_operator AS o WHERE o.oprnamespace = v_schema
    ) AS x
    WHERE x.owner OPERATOR(pg_catalog.<>) v_owner
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'schema pipeline holds % %, which belongs to role %, not to its owner %: the pipeline '
                        'runs only while everything in its schema is its owner''s', v_found.kind, v_found.name,
                        v_found.owner, pg_catalog.pg_get_userbyid(v_owner)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop it (as a superuser or its owner) and REVOKE CREATE ON SCHEMA pipeline from other roles.';
    END IF;
    SELECT r.rolname INTO v_found
    FROM pg_catalog.pg_roles AS r
    WHERE r.oid OPERATOR(pg_catalog.<>) v_owner AND NOT r.rolsuper
      AND pg_catalog.has_schema_privilege(r.oid, v_schema, 'CREATE')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'role % may create objects in schema pipeline: one of its functions there could be '
                        'called by runs with the rights of %', v_found.rolname, pg_catalog.pg_get_userbyid(v_owner)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = pg_catalog.format('REVOKE CREATE ON SCHEMA pipeline FROM %I;', v_found.rolname);
    END IF;
END;
$$;

COMMENT ON FUNCTION pipeline._refuse_foreign_objects() IS
    'Raises an error naming it when schema pipeline holds an object of another role or another role may create there.';
