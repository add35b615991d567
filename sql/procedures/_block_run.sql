-- Record a run that could not start as failed, saying who blocked it: the run's error message
-- and a 'run' failure start with "blocked:". A blocked run changes nothing, so the failures of
-- the latest succeeded run still hold: they are carried forward, and current_failures shows
-- them beside the blocking, rather than hiding them behind a failed run with no failures.
CREATE OR REPLACE FUNCTION pipeline._block_run(p_run_id bigint, p_message text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_held_back bigint;
BEGIN
    INSERT INTO pipeline.pipeline_failures (run_id, stage, sqlstate, error_message)
    VALUES (p_run_id, 'run', '55P03', p_message);
    v_held_back := pipeline._carry_failures_forward(p_run_id);
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'failed',
        finished_at = clock_timestamp(),
        error_message = p_message,
        rows_held_back = v_held_back,
        failures = (SELECT count(*) FROM pipeline.pipeline_failures AS f WHERE f.run_id = p_run_id)
    WHERE r.run_id = p_run_id;
    PERFORM pipeline._log_failures(p_run_id);
END;
$$;

COMMENT ON FUNCTION pipeline._block_run(bigint, text) IS
    'Marks a run that could not start failed with a "blocked: ..." message and run failure, carrying the '
    'latest succeeded run''s failures forward.';
