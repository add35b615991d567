-- One pipeline run, as pg_cron, psql or the CLI call it (outside a transaction block).
-- Thin on purpose: a procedure that COMMITs cannot pin search_path, be SECURITY DEFINER or
-- catch errors, so the work lives in functions that are (and that pin search_path). It runs
-- with the caller's rights and the caller's search_path, so every name here is
-- schema-qualified, operators included: nothing a caller's schema holds can stand in for ours.
CREATE OR REPLACE PROCEDURE pipeline.run_patient_journey_pipeline(p_trigger text DEFAULT 'manual',
                                                                  p_full boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    -- Session-level, so it survives the COMMITs below and dies with a killed backend.
    v_lock_key constant bigint := 4857394021;  -- also in pipeline._holds_run_lock()
    v_run_id bigint;
    v_status pg_catalog.text;
    v_run record;
BEGIN
    -- Fails at once inside a transaction block, before the lock below could leak there.
    COMMIT;
    IF NOT pg_catalog.pg_try_advisory_lock(v_lock_key) THEN
        v_run_id := pipeline._record_skipped_run(p_trigger);
        COMMIT;
        RAISE NOTICE 'pipeline run % skipped: another run holds the pipeline', v_run_id;
        RETURN;
    END IF;

    v_run_id := pipeline._begin_run(p_trigger);
    COMMIT;  -- the running row must be visible while the work goes on
    v_status := pipeline._execute_run(v_run_id, coalesce(p_full, false));
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(v_lock_key);

    SELECT * INTO v_run FROM pipeline.pipeline_runs AS r WHERE r.run_id OPERATOR(pg_catalog.=) v_run_id;
    IF v_status OPERATOR(pg_catalog.=) 'failed' THEN
        -- Raised after the COMMIT, so the failed run stays recorded while pg_cron and the CLI see an error.
        RAISE EXCEPTION 'pipeline run % failed: %', v_run_id, v_run.error_message
            USING ERRCODE = 'external_routine_exception',
                  HINT = 'SELECT * FROM pipeline.current_failures;';
    END IF;
    RAISE NOTICE 'pipeline run % (%) succeeded: % inserted, % updated, % held back, % failures',
        v_run_id, v_run.mode, v_run.rows_inserted, v_run.rows_updated, v_run.rows_held_back, v_run.failures;
END;
$$;

COMMENT ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean) IS
    'One run: parse slugs, match milestones, upsert patient_journey_schedule_window, log failures and the run. '
    'Recomputes only what the change queue names unless p_full. '
    'CALL it outside a transaction block; a concurrent call records itself as skipped.';

-- Running the pipeline is granted (pipeline.grant_access() grants it to pipeline_runner), not public.
REVOKE ALL ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean) FROM PUBLIC;
