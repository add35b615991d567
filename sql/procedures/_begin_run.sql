-- Record a new run. Called only while holding the pipeline lock, so any other run still
-- marked running lost its session (killed backend, crash) and is marked aborted.
-- SECURITY DEFINER: the role running the pipeline needs no write access to its tables. It
-- refuses to run outside the lock, or it could mark a live run aborted.
CREATE OR REPLACE FUNCTION pipeline._begin_run(p_trigger text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_run_id bigint;
BEGIN
    PERFORM pipeline._require_run_lock('_begin_run');
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'aborted',
        finished_at = clock_timestamp(),
        error_message = 'its session ended before the run finished (killed backend or server crash); '
                        'nothing it wrote was kept'
    WHERE r.status = 'running';

    INSERT INTO pipeline.pipeline_runs (trigger) VALUES (coalesce(p_trigger, 'manual'))
    RETURNING run_id INTO v_run_id;
    -- A deferred trigger on pipeline_runs fires here, where the procedure can still release its
    -- lock, not at the COMMIT that follows.
    SET CONSTRAINTS ALL IMMEDIATE;
    RETURN v_run_id;
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._begin_run(text) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._begin_run(text) IS
    'Marks runs whose session died as aborted and inserts a running row for the new run.';
