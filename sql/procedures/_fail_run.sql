-- Record a run as failed when even _execute_run could not record its outcome. SECURITY
-- DEFINER, like the other run steps, so that it works for a role that may only run the
-- pipeline; it touches only a running run of this session, under the pipeline's lock.
CREATE OR REPLACE FUNCTION pipeline._fail_run(p_run_id bigint, p_message text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    PERFORM pipeline._require_run_lock('_fail_run');
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'failed',
        finished_at = clock_timestamp(),
        error_message = p_message
    WHERE r.run_id = p_run_id AND r.status = 'running' AND r.backend_pid = pg_backend_pid();
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._fail_run(bigint, text) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._fail_run(bigint, text) IS
    'Marks this session''s running run failed with a message, when the run could not record its own outcome.';
