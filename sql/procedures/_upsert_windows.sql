-- Write the run's loadable candidates in one statement. Should that statement fail, fall back
-- to one pair at a time so that only the bad rows are logged and skipped.
CREATE OR REPLACE FUNCTION pipeline._upsert_windows(p_run_id bigint,
                                                    OUT rows_inserted bigint,
                                                    OUT rows_updated bigint,
                                                    OUT rows_failed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_pair record;
    v_written record;
    ex_sqlstate text;
    ex_message text;
    ex_detail text;
    ex_context text;
BEGIN
    rows_failed := 0;
    BEGIN
        SELECT * INTO rows_inserted, rows_updated FROM pipeline._write_windows(NULL, NULL);
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS ex_message = MESSAGE_TEXT;
        RAISE NOTICE 'bulk upsert failed (%); isolating the bad rows one at a time', ex_message;
    END;

    rows_inserted := 0;
    rows_updated := 0;
    CREATE INDEX ON pg_temp.run_candidate (patient_journey_id, activity_id);
    FOR v_pair IN
        SELECT c.patient_journey_id, c.activity_id, c.schedule_id, c.schedule_slug
        FROM pg_temp.run_candidate AS c
        WHERE c.held_back IS NULL
    LOOP
        BEGIN
            SELECT * INTO v_written
            FROM pipeline._write_windows(v_pair.patient_journey_id, v_pair.activity_id);
            rows_inserted := rows_inserted + v_written.rows_inserted;
            rows_updated := rows_updated + v_written.rows_updated;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE, ex_message = MESSAGE_TEXT,
                                    ex_detail = PG_EXCEPTION_DETAIL, ex_context = PG_EXCEPTION_CONTEXT;
            INSERT INTO pipeline.pipeline_failures
                (run_id, stage, schedule_id, schedule_slug, patient_journey_id, activity_id,
                 sqlstate, error_message, error_detail, error_context, rows_held_back)
            VALUES (p_run_id, 'load', v_pair.schedule_id, v_pair.schedule_slug, v_pair.patient_journey_id,
                    v_pair.activity_id, ex_sqlstate, ex_message, nullif(ex_detail, ''), ex_context, 1);
            rows_failed := rows_failed + 1;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._upsert_windows(bigint) IS
    'Run step 4: writes new and changed pairs in one statement; a row-by-row fallback isolates bad rows.';
