-- A full run over a loaded window table: its new and changed window rows (pg_temp.run_changed_window),
-- found once, into an unlogged table of schema pipeline, and pg_temp.run_window pointed at them
-- for the write. CREATE TABLE AS may read in parallel, INSERT ... SELECT never does in
-- PostgreSQL 15: with the tables the views join out of pg_temp (_prepare_candidates'
-- p_parallel), the candidate query and its comparison with the stored rows run in parallel
-- workers, and the write gets only the rows it must write.
-- enable_nestloop: every candidate is compared, by hashing, never by one key lookup each, which
-- the planner picks when it expects few candidates (it cannot estimate held_back IS NULL): at
-- 1,000,000 journeys, whose window table does not fit in memory, a full run over an unchanged
-- table took 484 s so, and 291 s joined by hashing.
-- parallel_tuple_cost: each row goes through the leader anyway; at the default price of passing
-- it there (0.1 a row) the planner kept the candidate query serial.
-- Like the tables it reads, pipeline.run_staged_window is the owner's, unseen by other sessions,
-- and dropped before the run commits (pipeline._drop_run_tables).
CREATE OR REPLACE FUNCTION pipeline._stage_windows()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET enable_nestloop = off
SET parallel_tuple_cost = 0
AS $$
BEGIN
    -- plpgsql_check cannot know the view _upsert_windows made: the pragma tells it (a no-op when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_changed_window (patient_journey_id bigint, activity_id bigint)';
    -- EXECUTE: the table exists only from this statement on, which a static check cannot know
    EXECUTE 'CREATE UNLOGGED TABLE pipeline.run_staged_window AS SELECT c.* FROM pg_temp.run_changed_window AS c';
    EXECUTE 'CREATE OR REPLACE TEMP VIEW run_window AS SELECT s.* FROM pipeline.run_staged_window AS s';
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._stage_windows() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._stage_windows() IS
    'Full-run step: computes the new and changed window rows once, in parallel, into the unlogged '
    'pipeline.run_staged_window, and points pg_temp.run_window at them.';
