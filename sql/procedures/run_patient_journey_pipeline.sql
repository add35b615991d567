-- One pipeline run, as pg_cron, psql or the CLI call it (outside a transaction block).
-- Thin on purpose: a procedure that COMMITs cannot pin search_path, be SECURITY DEFINER or
-- catch errors, so the work lives in functions that are (and that pin search_path). It runs
-- with the caller's rights and the caller's search_path, so every name here is
-- schema-qualified, operators included: nothing a caller's schema holds can stand in for ours.
-- It hands back the run it recorded: p_run_id on a normal way out (succeeded, skipped), and
-- the error's DETAIL 'run_id=N' when it raises after recording the run (a RAISE loses OUT
-- values), so no caller has to guess which row of pipeline_runs was its own. Whatever the
-- caller passes as p_run_id is ignored.
CREATE OR REPLACE PROCEDURE pipeline.run_patient_journey_pipeline(p_trigger text DEFAULT 'manual',
                                                                  p_full boolean DEFAULT false,
                                                                  INOUT p_run_id bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_run_id pg_catalog.int8;
    v_status pg_catalog.text;
    v_run record;
    ex_sqlstate pg_catalog.text;
    ex_message pg_catalog.text;
BEGIN
    p_run_id := NULL;  -- until the run is recorded
    -- Fails at once inside a transaction block, before the run's lock could be taken there.
    COMMIT;
    -- Each transaction of a run reads committed data, whatever default_transaction_isolation the
    -- session or its role sets: under a snapshot older than the start lock, two runs could both
    -- find no live run and start.
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
    PERFORM pipeline._check_run_session();  -- a standby, a read-only default, an absurd timeout: refuse, saying why
    -- Records the run as running (and takes its own session-level lock, which survives the
    -- COMMITs below and dies with a killed backend), skipped, or failed when it is blocked.
    v_run_id := pipeline._begin_run(p_trigger);
    p_run_id := v_run_id;
    COMMIT;  -- the running row must be visible while the work goes on
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
    SELECT r.status, r.error_message INTO v_run
    FROM pipeline.pipeline_runs AS r WHERE r.run_id OPERATOR(pg_catalog.=) v_run_id;
    IF v_run.status OPERATOR(pg_catalog.=) 'skipped' THEN
        RAISE NOTICE 'pipeline run % skipped: %', v_run_id, v_run.error_message;
        RETURN;
    ELSIF v_run.status OPERATOR(pg_catalog.<>) 'running' THEN
        -- Raised after the COMMIT, so the blocked run stays recorded while pg_cron and the CLI see an error.
        RAISE EXCEPTION 'pipeline run % could not start: %', v_run_id, v_run.error_message
            USING ERRCODE = 'external_routine_exception',
                  DETAIL = pg_catalog.format('run_id=%s', v_run_id),
                  HINT = 'End the session named (SELECT pg_terminate_backend(pid)), then run again.';
    END IF;

    -- From here on every way out releases the run's lock: it outlives an error in this session
    -- (psql keeps it open). A block with a handler cannot COMMIT, hence the block, then COMMIT.
    BEGIN
        v_status := pipeline._execute_run(v_run_id, coalesce(p_full, false));
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- _execute_run records its own failures; this is when even recording the outcome broke.
        GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE, ex_message = MESSAGE_TEXT;
        v_status := 'unrecorded';
        BEGIN
            PERFORM pipeline._fail_run(v_run_id, ex_sqlstate);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            NULL;  -- the row stays running; the next run marks it aborted
        END;
    END;
    COMMIT;
    PERFORM pipeline._release_run_locks();

    IF v_status OPERATOR(pg_catalog.=) 'unrecorded' THEN
        RAISE EXCEPTION 'pipeline run % failed while recording its outcome: % (SQLSTATE %)',
            v_run_id, ex_message, ex_sqlstate
            USING ERRCODE = 'external_routine_exception',
                  DETAIL = pg_catalog.format('run_id=%s', v_run_id),
                  HINT = 'Check that pipeline.pipeline_runs and pipeline.pipeline_failures can be written.';
    END IF;
    SELECT * INTO v_run FROM pipeline.pipeline_runs AS r WHERE r.run_id OPERATOR(pg_catalog.=) v_run_id;
    -- A warning, not an error: pg_cron's status stays what the run was; check and metrics flag it.
    IF v_run.sla_breached THEN
        RAISE WARNING 'pipeline run % took %, longer than its SLA of %', v_run_id,
            v_run.finished_at OPERATOR(pg_catalog.-) v_run.started_at,
            (SELECT s.sla FROM pipeline.settings AS s)
            USING HINT = 'See pipeline.pipeline_runs (sla_breached); the SLA is pipeline.settings.sla.';
    END IF;
    IF v_status OPERATOR(pg_catalog.=) 'failed' THEN
        -- Raised after the COMMIT, so the failed run stays recorded while pg_cron and the CLI see an error.
        RAISE EXCEPTION 'pipeline run % failed: %', v_run_id, v_run.error_message
            USING ERRCODE = 'external_routine_exception',
                  DETAIL = pg_catalog.format('run_id=%s', v_run_id),
                  HINT = 'SELECT * FROM pipeline.current_failures;';
    END IF;
    RAISE NOTICE 'pipeline run % (%) succeeded: % inserted, % updated, % held back, % failures',
        v_run_id, v_run.mode, v_run.rows_inserted, v_run.rows_updated, v_run.rows_held_back, v_run.failures;
END;
$$;

COMMENT ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean, bigint) IS
    'One run: parse slugs, match milestones, upsert patient_journey_schedule_window, log failures and the run. '
    'Recomputes only what the change queue names unless p_full. '
    'CALL it outside a transaction block; a call while another run is live records itself as skipped, one that '
    'is blocked records itself as failed and raises an error. Hands back the run''s id in p_run_id, or, when '
    'it raises after recording the run, in the error''s DETAIL (run_id=N).';

-- Running the pipeline is granted (pipeline.grant_access() grants it to pipeline_runner), not public.
REVOKE ALL ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean, bigint) FROM PUBLIC;
