-- A run with nothing queued changes nothing, so the failures of the latest succeeded run
-- still hold: copy them to this run, keeping current_failures complete. Returns the pairs
-- held back.
CREATE OR REPLACE FUNCTION pipeline._carry_failures_forward(p_run_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_previous record;
BEGIN
    SELECT r.run_id, r.rows_held_back INTO v_previous
    FROM pipeline.pipeline_runs AS r
    WHERE r.status = 'succeeded' AND r.run_id < p_run_id
    ORDER BY r.run_id DESC
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO pipeline.pipeline_failures
        (run_id, stage, schedule_id, schedule_slug, patient_journey_id, activity_id,
         sqlstate, error_message, error_detail, error_context, rows_held_back)
    SELECT p_run_id, f.stage, f.schedule_id, f.schedule_slug, f.patient_journey_id, f.activity_id,
           f.sqlstate, f.error_message, f.error_detail, f.error_context, f.rows_held_back
    FROM pipeline.pipeline_failures AS f
    WHERE f.run_id = v_previous.run_id;
    RETURN v_previous.rows_held_back;
END;
$$;

COMMENT ON FUNCTION pipeline._carry_failures_forward(bigint) IS
    'No-op runs: copies the latest succeeded run''s failures, which nothing has changed since.';
