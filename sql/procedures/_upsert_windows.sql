-- Write the run's loadable candidates (pg_temp.run_window) in one statement; into an empty window
-- table, insert first and build the key index after, several times faster than maintaining it
-- row by row; a full run over a loaded table finds the rows it must write in parallel first
-- (_stage_windows). Should the bulk statement fail, fall back to one pair at a time so that only the
-- bad rows are logged and skipped. loaded_into_empty: the rows were written into a table found
-- empty under the exclusive lock, so every row in it is this run's.
CREATE OR REPLACE FUNCTION pipeline._upsert_windows(p_run_id bigint,
                                                    p_scoped boolean,
                                                    OUT rows_inserted bigint,
                                                    OUT rows_updated bigint,
                                                    OUT rows_failed bigint,
                                                    OUT loaded_into_empty boolean)
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
    -- plpgsql_check cannot know the views _prepare_candidates made: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_window (patient_id bigint, patient_journey_id bigint, activity_id bigint, '
            'activity_content_slug text, schedule_id bigint, schedule_slug text, schedule_start_offset_days integer, '
            'schedule_end_offset_days integer, schedule_milestone_slug text, milestone_date date, '
            'window_start_date date, window_end_date date, retired_at timestamptz, result_count integer, '
            'completed_on date, held_back boolean)';
    -- The window rows to write: new, or with a value that differs from the stored row's.
    -- The unchanged ones are dropped with a join before ON CONFLICT, which would lock each
    -- (a page dirtied and a WAL record) before finding it unchanged; a full run finds the
    -- rest first, in parallel, and writes only them. A view locks the tables it reads, so this
    -- one is made here, not with the others: the run's first look at the window table
    -- comes after it has recorded the pairs held back (a test holds the run there). Made
    -- before the block, so that the fallback's calls of _write_windows, which name it, find it.
    CREATE TEMP VIEW run_changed_window AS
    SELECT c.*
    FROM pg_temp.run_window AS c
    LEFT JOIN pipeline.patient_journey_schedule_window AS old
        ON old.patient_journey_id = c.patient_journey_id AND old.activity_id = c.activity_id
    WHERE old.patient_journey_id IS NULL
       OR (old.patient_id, old.activity_content_slug, old.schedule_id, old.schedule_slug,
           old.schedule_start_offset_days, old.schedule_end_offset_days,
           old.schedule_milestone_slug, old.milestone_date, old.window_start_date,
           old.window_end_date, old.retired_at, old.result_count, old.completed_on, old.held_back)
          IS DISTINCT FROM
          (c.patient_id, c.activity_content_slug, c.schedule_id, c.schedule_slug,
           c.schedule_start_offset_days, c.schedule_end_offset_days,
           c.schedule_milestone_slug, c.milestone_date, c.window_start_date,
           c.window_end_date, c.retired_at, c.result_count, c.completed_on, c.held_back);
    rows_failed := 0;
    loaded_into_empty := false;
    v_empty := NOT EXISTS (SELECT FROM pipeline.patient_journey_schedule_window);
    IF v_empty THEN
        -- dropping the key needs an exclusive lock; without it, load the ordinary way
        v_empty := pipeline._lock_for_rebuild(ARRAY['pipeline.patient_journey_schedule_window']::regclass[],
                                              'pipeline.patient_journey_schedule_window_pkey');
        -- and looked at again under it: the owner may have written rows meanwhile
        v_empty := v_empty AND NOT EXISTS (SELECT FROM pipeline.patient_journey_schedule_window);
    END IF;
    BEGIN
        IF v_empty THEN
            ALTER TABLE pipeline.patient_journey_schedule_window
                DROP CONSTRAINT patient_journey_schedule_window_pkey;
            -- The counting trigger would keep every row this statement inserts in a transition
            -- table (593 against 119 MiB of temporary files for the load at 100,000 journeys)
            -- only to count them: without it, _install_adherence_counts counts the rows from
            -- the table afterwards, as migrate does, and puts the trigger back; all under this lock.
            DROP TRIGGER IF EXISTS count_adherence_inserted ON pipeline.patient_journey_schedule_window;
            -- run_window has the columns a run writes, in the table's order; the timestamps take their defaults
            INSERT INTO pipeline.patient_journey_schedule_window
                (patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_id, schedule_slug,
                 schedule_start_offset_days, schedule_end_offset_days, schedule_milestone_slug, milestone_date,
                 window_start_date, window_end_date, retired_at, result_count, completed_on, held_back)
            SELECT w.* FROM pg_temp.run_window AS w;
            GET DIAGNOSTICS rows_inserted = ROW_COUNT;
            rows_updated := 0;
            ALTER TABLE pipeline.patient_journey_schedule_window
                ADD CONSTRAINT patient_journey_schedule_window_pkey PRIMARY KEY (patient_journey_id, activity_id);
            PERFORM pipeline._install_adherence_counts();
            -- fresh statistics for the steps after (retiring pairs) and the next runs and reports
            ANALYZE pipeline.patient_journey_schedule_window;
            loaded_into_empty := true;
        ELSE
            IF NOT p_scoped THEN
                PERFORM pipeline._stage_windows();
            END IF;
            SELECT * INTO rows_inserted, rows_updated
            FROM pipeline._write_windows(p_skip_unchanged_by_join => p_scoped,
                                         p_patient_journey_id => NULL, p_activity_id => NULL);
        END IF;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        -- (the block's rollback undid the staging: the pairs below are computed afresh)
        GET STACKED DIAGNOSTICS ex_message = MESSAGE_TEXT;
        RAISE NOTICE 'bulk upsert failed (%); isolating the bad rows one at a time', ex_message;
    END;

    rows_inserted := 0;
    rows_updated := 0;
    -- One pair at a time reads the window rows thousands of times: compute them once, into a
    -- table, and from now on let run_window read that.
    CREATE TEMP TABLE run_window_rows ON COMMIT DROP AS SELECT w.* FROM pg_temp.run_window AS w;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_window_rows (patient_journey_id bigint, activity_id bigint, '
            'schedule_id bigint, schedule_slug text)';
    CREATE INDEX ON pg_temp.run_window_rows (patient_journey_id, activity_id);
    CREATE OR REPLACE TEMP VIEW run_window AS SELECT r.* FROM pg_temp.run_window_rows AS r;
    FOR v_pair IN
        SELECT r.patient_journey_id, r.activity_id, r.schedule_id, r.schedule_slug FROM pg_temp.run_window_rows AS r
    LOOP
        BEGIN
            SELECT * INTO v_written
            FROM pipeline._write_windows(p_skip_unchanged_by_join => false,
                                         p_patient_journey_id => v_pair.patient_journey_id,
                                         p_activity_id => v_pair.activity_id);
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

COMMENT ON FUNCTION pipeline._upsert_windows(bigint, boolean) IS
    'Run step 4: writes new and changed pairs of pg_temp.run_window in one statement (index built after when '
    'the table is empty); a row-by-row fallback isolates bad rows.';

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._upsert_windows(bigint, boolean) FROM PUBLIC;
