-- Record a new run. Called only while holding the pipeline lock, so any other run still
-- marked running lost its session (killed backend, crash) and is marked aborted.
CREATE OR REPLACE FUNCTION pipeline._begin_run(p_trigger text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_run_id bigint;
BEGIN
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'aborted',
        finished_at = clock_timestamp(),
        error_message = 'its session ended before the run finished (killed backend or server crash); '
                        'nothing it wrote was kept'
    WHERE r.status = 'running';

    INSERT INTO pipeline.pipeline_runs (trigger) VALUES (coalesce(p_trigger, 'manual'))
    RETURNING run_id INTO v_run_id;
    RETURN v_run_id;
END;
$$;

COMMENT ON FUNCTION pipeline._begin_run(text) IS
    'Marks runs whose session died as aborted and inserts a running row for the new run.';
