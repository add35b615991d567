-- Record a run as failed when even _execute_run could not record its outcome. SECURITY
-- DEFINER, like the other run steps, so that it works for a role that may only run the
-- pipeline. It takes no text from its caller: only the SQLSTATE of the error (five characters,
-- 0-9 and A-Z), written into a fixed message; the error's own text reached the caller, and the
-- server log. It touches only a running run that this session began (see _require_run), and
-- whose _execute_run is known to have broken: it still holds the run's execution lock.
CREATE OR REPLACE FUNCTION pipeline._fail_run(p_run_id bigint, p_sqlstate text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_execution record;
BEGIN
    IF p_sqlstate IS NULL OR p_sqlstate !~ '^[0-9A-Z]{5}$' THEN
        RAISE EXCEPTION 'pipeline._fail_run takes a SQLSTATE: five characters, 0-9 and A-Z'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'It is a step of pipeline.run_patient_journey_pipeline: CALL that.';
    END IF;
    PERFORM pipeline._require_run(p_run_id, '_fail_run');
    -- Only a run whose _execute_run broke before recording the outcome: its execution lock is
    -- still held, and no call by hand can have taken it (see _run_lock_keys).
    SELECT k.execution_key1 AS key1, k.execution_key2 AS key2 INTO v_execution
    FROM pipeline._run_lock_keys(p_run_id) AS k;
    IF NOT EXISTS (SELECT FROM pipeline._advisory_holders(v_execution.key1, v_execution.key2) AS h
                   WHERE h.pid = pg_backend_pid() AND h.mode = 'ExclusiveLock') THEN
        RAISE EXCEPTION 'pipeline._fail_run records only a run whose _execute_run broke before recording its outcome (run %)',
                        p_run_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'failed',
        finished_at = clock_timestamp(),
        error_message = format('the run broke while recording its outcome (SQLSTATE %s); its error went '
                               'to the caller and the server log', p_sqlstate)
    WHERE r.run_id = p_run_id;
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._fail_run(bigint, text) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._fail_run(bigint, text) IS
    'Marks a running run this session began failed, with a fixed message naming the SQLSTATE, when the run '
    'could not record its own outcome.';
