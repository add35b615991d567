-- Refuse to go on unless this session holds the pipeline's run lock: the steps that run with
-- the owner's rights call it first, so that granting them lets a role run the pipeline
-- through its procedure and nothing else.
CREATE OR REPLACE FUNCTION pipeline._require_run_lock(p_step text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    IF NOT pipeline._holds_run_lock() THEN
        RAISE EXCEPTION 'pipeline.% is a step of pipeline.run_patient_journey_pipeline and needs its lock', p_step
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
END;
$$;

COMMENT ON FUNCTION pipeline._require_run_lock(text) IS
    'Raises SQLSTATE 55000 naming the step unless this session holds the pipeline''s run lock.';
