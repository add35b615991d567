-- The work of one run, all in the caller's transaction: parse, match, log problems, upsert,
-- purge, and record the outcome. Any error rolls the work back and leaves one 'run' failure.
CREATE OR REPLACE FUNCTION pipeline._execute_run(p_run_id bigint)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_held_back bigint;
    v_written record;
    ex_sqlstate text;
    ex_message text;
    ex_detail text;
    ex_context text;
BEGIN
    BEGIN
        PERFORM pipeline._parse_schedules();
        PERFORM pipeline._collect_candidates();
        v_held_back := pipeline._record_held_back(p_run_id);
        SELECT * INTO v_written FROM pipeline._upsert_windows(p_run_id);
        PERFORM pipeline._purge_history(p_run_id);

        UPDATE pipeline.pipeline_runs AS r
        SET status = 'succeeded',
            finished_at = clock_timestamp(),
            rows_inserted = v_written.rows_inserted,
            rows_updated = v_written.rows_updated,
            rows_held_back = v_held_back + v_written.rows_failed,
            failures = (SELECT count(*) FROM pipeline.pipeline_failures AS f WHERE f.run_id = p_run_id)
        WHERE r.run_id = p_run_id;
        RETURN 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- query_canceled too: a statement_timeout must still leave a failed run behind.
        GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE, ex_message = MESSAGE_TEXT,
                                ex_detail = PG_EXCEPTION_DETAIL, ex_context = PG_EXCEPTION_CONTEXT;
    END;

    INSERT INTO pipeline.pipeline_failures (run_id, stage, sqlstate, error_message, error_detail, error_context)
    VALUES (p_run_id, 'run', ex_sqlstate, ex_message, nullif(ex_detail, ''), ex_context);
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'failed',
        finished_at = clock_timestamp(),
        failures = 1,
        error_message = format('%s (SQLSTATE %s)', ex_message, ex_sqlstate)
    WHERE r.run_id = p_run_id;
    RETURN 'failed';
END;
$$;

COMMENT ON FUNCTION pipeline._execute_run(bigint) IS
    'One run''s work in one transaction; returns succeeded or failed (the error is logged as a run failure).';
