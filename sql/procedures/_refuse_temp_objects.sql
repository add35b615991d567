-- A run keeps its intermediate results in temporary tables and views named run_* (run_change,
-- run_schedule, run_scope, run_survey_pair, ...), created by the run in the caller's session.
-- Objects of that name that the session made itself beforehand (a table, a view, a type, one
-- with a trigger calling the caller's code) must not stand in for them, so a run refuses to
-- start while any exists, naming them.
CREATE OR REPLACE FUNCTION pipeline._refuse_temp_objects()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_found text;
BEGIN
    SELECT string_agg(DISTINCT format('pg_temp.%I', o.name), ', ') INTO v_found
    FROM (SELECT c.relname::text AS name FROM pg_catalog.pg_class AS c
          WHERE c.relnamespace = pg_my_temp_schema()
          UNION ALL
          SELECT t.typname::text FROM pg_catalog.pg_type AS t
          WHERE t.typnamespace = pg_my_temp_schema()) AS o
    WHERE o.name LIKE 'run^_%' ESCAPE '^';
    IF v_found IS NOT NULL THEN
        RAISE EXCEPTION 'this session has temporary objects named like the run''s own: %', v_found
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop them (DISCARD TEMP drops all of this session''s), or run the pipeline from a new session.';
    END IF;
END;
$$;

COMMENT ON FUNCTION pipeline._refuse_temp_objects() IS
    'Raises SQLSTATE 42710 naming them when this session has temporary objects named run_*, the run''s own names.';
