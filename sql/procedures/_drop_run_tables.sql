-- Drop the unlogged tables of schema pipeline that a full run works in (_prepare_candidates'
-- p_parallel, _stage_windows), before the run commits: no other session ever sees them, and no
-- copy of the source's rows outlives the run. They are found in the catalog, so the routines
-- that make them are the one list of their names: every unlogged table of schema pipeline named
-- run_* (the migrations make none, and only the owner may create in the schema). CASCADE: the
-- run's temporary views read them, and the steps that need those views are done. A failed run
-- needs no call: its rollback removes the tables with the rest of its work.
CREATE OR REPLACE FUNCTION pipeline._drop_run_tables()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_table name;
BEGIN
    FOR v_table IN
        SELECT c.relname
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace = 'pipeline'::regnamespace
           AND c.relkind = 'r'
           AND c.relpersistence = 'u'
           AND c.relname LIKE 'run^_%' ESCAPE '^'
    LOOP
        EXECUTE format('DROP TABLE pipeline.%I CASCADE', v_table);
    END LOOP;
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._drop_run_tables() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._drop_run_tables() IS
    'Full-run step: drops the unlogged tables of schema pipeline (run_*) that the run worked in, before it commits.';
