-- Record a run that found another run holding the pipeline. SECURITY DEFINER, like the other
-- steps the procedure calls, so that the role running the pipeline needs no write access to
-- pipeline_runs.
CREATE OR REPLACE FUNCTION pipeline._record_skipped_run(p_trigger text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_run_id bigint;
BEGIN
    INSERT INTO pipeline.pipeline_runs (trigger, status, finished_at, error_message)
    VALUES (coalesce(p_trigger, 'manual'), 'skipped', clock_timestamp(), 'another run held the pipeline')
    RETURNING run_id INTO v_run_id;
    RETURN v_run_id;
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._record_skipped_run(text) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._record_skipped_run(text) IS
    'Records a run skipped because another run held the pipeline; returns its run_id.';
