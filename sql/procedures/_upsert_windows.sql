-- Write the run's loadable candidates in one statement; into an empty window table, insert
-- first and build the key index after, several times faster than maintaining it row by row.
-- Should the bulk statement fail, fall back to one pair at a time so that only the bad rows
-- are logged and skipped.
CREATE OR REPLACE FUNCTION pipeline._upsert_windows(p_run_id bigint,
                                                    p_candidates text,
                                                    p_scoped boolean,
                                                    OUT rows_inserted bigint,
                                                    OUT rows_updated bigint,
                                                    OUT rows_failed bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_empty boolean;
    v_pair record;
    v_written record;
    ex_sqlstate text;
    ex_message text;
    ex_detail text;
    ex_context text;
BEGIN
    -- plpgsql_check takes p_candidates for untrusted text: it is the SQL _candidate_queries built
    -- (its values quoted by format's %L and %I), and only the owner's own run can call this
    -- function (REVOKE below; a test checks it), so its EXECUTEs are not checked for injection.
    PERFORM 'PRAGMA:DISABLE:SECURITY_WARNINGS';
    rows_failed := 0;
    v_empty := NOT EXISTS (SELECT FROM pipeline.patient_journey_schedule_window);
    IF v_empty THEN
        -- dropping the key needs an exclusive lock; without it, load the ordinary way
        v_empty := pipeline._lock_for_rebuild(ARRAY['pipeline.patient_journey_schedule_window']::regclass[],
                                              'pipeline.patient_journey_schedule_window_pkey');
    END IF;
    BEGIN
        IF v_empty THEN
            ALTER TABLE pipeline.patient_journey_schedule_window
                DROP CONSTRAINT patient_journey_schedule_window_pkey;
            EXECUTE format(
                'INSERT INTO pipeline.patient_journey_schedule_window '
                '    (patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_id, '
                '     schedule_slug, schedule_start_offset_days, schedule_end_offset_days, '
                '     schedule_milestone_slug, milestone_date, window_start_date, window_end_date) '
                'SELECT c.patient_id, c.patient_journey_id, c.activity_id, c.content_slug, c.schedule_id, '
                '       c.schedule_slug, c.start_offset_days, c.end_offset_days, c.milestone_slug, '
                '       c.milestone_date, c.window_start_date, c.window_end_date '
                'FROM (%s) AS c WHERE c.held_back IS NULL', p_candidates);
            GET DIAGNOSTICS rows_inserted = ROW_COUNT;
            rows_updated := 0;
            ALTER TABLE pipeline.patient_journey_schedule_window
                ADD CONSTRAINT patient_journey_schedule_window_pkey PRIMARY KEY (patient_journey_id, activity_id);
        ELSE
            SELECT * INTO rows_inserted, rows_updated
            FROM pipeline._write_windows(p_candidates, NOT p_scoped, NULL, NULL);
        END IF;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS ex_message = MESSAGE_TEXT;
        RAISE NOTICE 'bulk upsert failed (%); isolating the bad rows one at a time', ex_message;
    END;

    rows_inserted := 0;
    rows_updated := 0;
    EXECUTE format('CREATE TEMP TABLE run_candidate ON COMMIT DROP AS %s', p_candidates);
    -- plpgsql_check cannot run the CREATE above: the pragma tells it the columns read below
    PERFORM 'PRAGMA:TABLE: pg_temp.run_candidate (patient_journey_id bigint, activity_id bigint, '
            'schedule_id bigint, schedule_slug text, held_back pipeline.held_back_reason)';
    PERFORM 'PRAGMA:ENABLE:SECURITY_WARNINGS';
    CREATE INDEX ON pg_temp.run_candidate (patient_journey_id, activity_id);
    FOR v_pair IN
        SELECT c.patient_journey_id, c.activity_id, c.schedule_id, c.schedule_slug
        FROM pg_temp.run_candidate AS c
        WHERE c.held_back IS NULL
    LOOP
        BEGIN
            SELECT * INTO v_written
            FROM pipeline._write_windows('SELECT * FROM pg_temp.run_candidate', false,
                                         v_pair.patient_journey_id, v_pair.activity_id);
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
            -- not in held_back_pair, so queue it again: the next run retries and reports it
            INSERT INTO pipeline.change_queue (kind, keys)
            VALUES ('patient_journey', ARRAY[v_pair.patient_journey_id]);
            rows_failed := rows_failed + 1;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._upsert_windows(bigint, text, boolean) IS
    'Run step 4: writes new and changed pairs in one statement (index built after when the table is empty); '
    'a row-by-row fallback isolates bad rows.';

-- It runs the SQL text it is given: a step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._upsert_windows(bigint, text, boolean) FROM PUBLIC;
