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
    ex_sqlstate pg_catalog.text;
    ex_message pg_catalog.text;
BEGIN
    -- Fails at once inside a transaction block, before the lock below could leak there.
    COMMIT;
    PERFORM pipeline._check_run_session();  -- a standby, a read-only default, an absurd timeout: refuse, saying why
    -- Should an earlier call in this session have failed to release the lock (an error at one
    -- of its COMMITs), release it now: the lock counts holds, and one kept would keep every
    -- other run out for as long as this session lives.
    WHILE pipeline._holds_run_lock() LOOP
        PERFORM pg_catalog.pg_advisory_unlock(v_lock_key);
    END LOOP;
    IF NOT pg_catalog.pg_try_advisory_lock(v_lock_key) THEN
        v_run_id := pipeline._record_skipped_run(p_trigger);
        COMMIT;
        RAISE NOTICE 'pipeline run % skipped: another run holds the pipeline', v_run_id;
        RETURN;
    END IF;

    -- The session lock outlives an error in this session (psql keeps it open), so from here on
    -- every way out releases it. (A block with a handler cannot COMMIT: hence two blocks.)
    BEGIN
        v_run_id := pipeline._begin_run(p_trigger);
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_catalog.pg_advisory_unlock(v_lock_key);
        RAISE;
    END;
    COMMIT;  -- the running row must be visible while the work goes on
    BEGIN
        v_status := pipeline._execute_run(v_run_id, coalesce(p_full, false));
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- _execute_run records its own failures; this is when even recording the outcome broke.
        GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE, ex_message = MESSAGE_TEXT;
        v_status := 'unrecorded';
        BEGIN
            PERFORM pipeline._fail_run(v_run_id,
                pg_catalog.format('the run broke while recording its outcome: %s (SQLSTATE %s)',
                                  ex_message, ex_sqlstate));
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            NULL;  -- the row stays running; the next run marks it aborted
        END;
    END;
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(v_lock_key);

    IF v_status OPERATOR(pg_catalog.=) 'unrecorded' THEN
        RAISE EXCEPTION 'pipeline run % failed while recording its outcome: % (SQLSTATE %)',
            v_run_id, ex_message, ex_sqlstate
            USING ERRCODE = 'external_routine_exception',
                  HINT = 'Check that pipeline.pipeline_runs and pipeline.pipeline_failures can be written.';
    END IF;
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
