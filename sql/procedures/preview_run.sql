-- For a DBA, in psql: what a full run would compute now, without writing anything. In a
-- transaction (the relations end with it):
--   BEGIN;
--   SELECT pipeline.preview_run();
--   SELECT * FROM pg_temp.run_candidate WHERE held_back IS NOT NULL;   -- every pair, and why not
--   SELECT * FROM pg_temp.run_window LIMIT 10;                         -- the rows a run would write
--   ROLLBACK;
-- It runs the run's own checks and preparation (_check_source_tables, _parse_schedules,
-- _prepare_candidates) with the caller's rights: it reads the source tables only if the caller may.
CREATE OR REPLACE FUNCTION pipeline.preview_run()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET row_security = off
AS $$
BEGIN
    -- as a run does: nothing of another role in schema pipeline, source tables that are plain
    -- tables whose expressions run no one's code, and no row-level security policy (the SET clause)
    PERFORM pipeline._refuse_foreign_objects();
    PERFORM pipeline._lock_source_tables();
    PERFORM pipeline._check_source_tables();
    PERFORM pipeline._refuse_temp_objects();
    PERFORM pipeline._parse_schedules();
    PERFORM pipeline._prepare_candidates(false, p_parallel => false);  -- in pg_temp: the caller's
    -- no check can tell an explicit transaction from psql's autocommit, in which the views are
    -- gone when this statement ends: the notice says so
    RAISE NOTICE 'prepared pg_temp.run_candidate, pg_temp.run_held_back_candidate and pg_temp.run_window '
                 '(and pg_temp.run_schedule); they end with this transaction'
        USING HINT = 'In psql''s autocommit they are gone already: BEGIN; SELECT pipeline.preview_run(); '
                     'SELECT * FROM pg_temp.run_candidate; ROLLBACK;';
END;
$$;

COMMENT ON FUNCTION pipeline.preview_run() IS
    'For a DBA, in a transaction: prepares what a full run would compute as pg_temp.run_candidate, '
    'run_held_back_candidate and run_window, with the caller''s rights; writes nothing.';
