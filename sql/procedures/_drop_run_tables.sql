-- Drop the unlogged tables of schema pipeline that a full run works in (_prepare_candidates'
-- p_parallel, _stage_windows), before the run commits: no other session ever sees them, and no
-- copy of the source's rows outlives the run. CASCADE: the run's temporary views read them,
-- and the steps that need those views are done. A failed run needs no call: its rollback
-- removes the tables with the rest of its work.
CREATE OR REPLACE FUNCTION pipeline._drop_run_tables()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    -- IF EXISTS: run_patient_journey exists only when patient journey ids repeat, and
    -- run_staged_window only when the run wrote from it
    DROP TABLE IF EXISTS pipeline.run_staged_window, pipeline.run_survey_pair, pipeline.run_pair_result,
                         pipeline.run_patient_journey, pipeline.run_activity, pipeline.run_journey_activity
        CASCADE;
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._drop_run_tables() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._drop_run_tables() IS
    'Full-run step: drops the unlogged tables of schema pipeline that the run worked in, before it commits.';
