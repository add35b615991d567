-- One pipeline run, as pg_cron, psql or the CLI call it (outside a transaction block).
-- Thin on purpose: a procedure that COMMITs cannot pin search_path or catch errors, so the
-- work lives in functions; every name here is schema-qualified.
CREATE OR REPLACE PROCEDURE pipeline.run_patient_journey_pipeline(p_trigger text DEFAULT 'manual',
                                                                  p_full boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    -- Session-level, so it survives the COMMITs below and dies with a killed backend.
    v_lock_key constant bigint := 4857394021;
    v_run_id bigint;
    v_status text;
    v_run record;
BEGIN
    -- Fails at once inside a transaction block, before the lock below could leak there.
    COMMIT;
    IF NOT pg_catalog.pg_try_advisory_lock(v_lock_key) THEN
        INSERT INTO pipeline.pipeline_runs (trigger, status, finished_at, error_message)
        VALUES (coalesce(p_trigger, 'manual'), 'skipped', pg_catalog.clock_timestamp(),
                'another run held the pipeline')
        RETURNING run_id INTO v_run_id;
        COMMIT;
        RAISE NOTICE 'pipeline run % skipped: another run holds the pipeline', v_run_id;
        RETURN;
    END IF;

    v_run_id := pipeline._begin_run(p_trigger);
    COMMIT;  -- the running row must be visible while the work goes on
    v_status := pipeline._execute_run(v_run_id, coalesce(p_full, false));
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(v_lock_key);

    SELECT * INTO v_run FROM pipeline.pipeline_runs AS r WHERE r.run_id = v_run_id;
    IF v_status = 'failed' THEN
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

-- Running the pipeline is granted, not public (a caller without rights on its tables would
-- fail after taking the lock).
REVOKE ALL ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean) FROM PUBLIC;
