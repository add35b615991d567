-- Refuse to go on unless p_run_id is a running run that this session began: its row names this
-- backend, and this session holds the run's own lock exclusively (_begin_run takes it for the
-- run it records). The steps that run with the owner's rights call it first, so a role granted
-- them can only carry out a run it started, never touch another session's.
CREATE OR REPLACE FUNCTION pipeline._require_run(p_run_id bigint, p_step text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pipeline.pipeline_runs AS r
                   WHERE r.run_id = p_run_id AND r.status = 'running' AND r.backend_pid = pg_backend_pid())
       OR NOT EXISTS (SELECT FROM pipeline._run_locks(p_run_id) AS l
                      WHERE l.pid = pg_backend_pid() AND l.mode = 'ExclusiveLock') THEN
        RAISE EXCEPTION 'pipeline.% works only on a running run that this session began (run %)', p_step, p_run_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
END;
$$;

COMMENT ON FUNCTION pipeline._require_run(bigint, text) IS
    'Raises SQLSTATE 55000 naming the step unless the run is running, began in this session and this session holds its lock.';
