-- What a run reads: every source table in schema public, and every child or partition of one
-- at any depth (a read of a table reads them too), each with the source table it is read as
-- part of. pipeline._check_source_tables checks these before a run reads; the event trigger
-- function pipeline._guard_source_tables refuses DDL that would make one unsafe to read.
CREATE OR REPLACE FUNCTION pipeline._source_relations()
RETURNS TABLE (relation regclass, reached_from text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
    WITH RECURSIVE source AS (
        SELECT to_regclass(t.table_name) AS oid, t.table_name AS reached_from
        FROM pipeline._change_capture_tables() AS t
        WHERE t.table_name LIKE 'public.%' AND to_regclass(t.table_name) IS NOT NULL
        UNION
        SELECT i.inhrelid::regclass, s.reached_from
        FROM source AS s JOIN pg_catalog.pg_inherits AS i ON i.inhparent = s.oid
    )
    SELECT s.oid, s.reached_from FROM source AS s
$$;

COMMENT ON FUNCTION pipeline._source_relations() IS
    'The source tables a run reads, with their children and partitions at any depth.';
