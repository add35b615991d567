-- The one statement that writes the window table: the window rows of pg_temp.run_window (all of
-- them, or the one pair named) inserted when new, updated in place when a value changed,
-- untouched otherwise.
-- p_skip_unchanged_by_join: read pg_temp.run_changed_window (_upsert_windows) instead, which
-- drops the unchanged rows with a join before ON CONFLICT, which locks every row it finds (dirtying its page and
-- writing WAL) before its WHERE finds it unchanged: at 100,000 journeys, a scope of 650,000
-- pairs of which 375,000 were unchanged took 10 s written without the join and 6.3 s with it.
-- One pair alone (the row-by-row fallback), or the rows a full run staged (only the changed
-- ones, pipeline._stage_windows), need no join.
-- plan_cache_mode: the parameters decide the plan (the join, one pair or all), so each call gets
-- a plan made for its values, as an EXECUTE would.
CREATE OR REPLACE FUNCTION pipeline._write_windows(p_skip_unchanged_by_join boolean,
                                                   p_patient_journey_id bigint,
                                                   p_activity_id bigint,
                                                   OUT rows_inserted bigint,
                                                   OUT rows_updated bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    -- plpgsql_check cannot know the run's views: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_window (patient_id bigint, patient_journey_id bigint, activity_id bigint, '
            'activity_content_slug text, schedule_id bigint, schedule_slug text, schedule_start_offset_days integer, '
            'schedule_end_offset_days integer, schedule_milestone_slug text, milestone_date date, '
            'window_start_date date, window_end_date date, retired_at timestamptz, result_count integer, '
            'completed_on date, held_back boolean)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_changed_window (patient_id bigint, patient_journey_id bigint, activity_id bigint, '
            'activity_content_slug text, schedule_id bigint, schedule_slug text, schedule_start_offset_days integer, '
            'schedule_end_offset_days integer, schedule_milestone_slug text, milestone_date date, '
            'window_start_date date, window_end_date date, retired_at timestamptz, result_count integer, '
            'completed_on date, held_back boolean)';
    WITH written AS (
        -- run_window has the columns a run writes, in the table's order; the timestamps take their defaults
        INSERT INTO pipeline.patient_journey_schedule_window AS w
            (patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_id, schedule_slug,
             schedule_start_offset_days, schedule_end_offset_days, schedule_milestone_slug, milestone_date,
             window_start_date, window_end_date, retired_at, result_count, completed_on, held_back)
        SELECT c.*
        FROM pg_temp.run_window AS c
        WHERE NOT p_skip_unchanged_by_join
          AND (p_patient_journey_id IS NULL
               OR (c.patient_journey_id = p_patient_journey_id AND c.activity_id = p_activity_id))
        UNION ALL
        SELECT c.* FROM pg_temp.run_changed_window AS c WHERE p_skip_unchanged_by_join
        ON CONFLICT (patient_journey_id, activity_id) DO UPDATE
        SET (patient_id, activity_content_slug, schedule_id, schedule_slug, schedule_start_offset_days,
             schedule_end_offset_days, schedule_milestone_slug, milestone_date, window_start_date,
             window_end_date, retired_at, result_count, completed_on, held_back, updated_at)
          = (EXCLUDED.patient_id, EXCLUDED.activity_content_slug, EXCLUDED.schedule_id, EXCLUDED.schedule_slug,
             EXCLUDED.schedule_start_offset_days, EXCLUDED.schedule_end_offset_days,
             EXCLUDED.schedule_milestone_slug, EXCLUDED.milestone_date, EXCLUDED.window_start_date,
             EXCLUDED.window_end_date, EXCLUDED.retired_at, EXCLUDED.result_count, EXCLUDED.completed_on,
             EXCLUDED.held_back, now())
        WHERE (w.patient_id, w.activity_content_slug, w.schedule_id, w.schedule_slug,
               w.schedule_start_offset_days, w.schedule_end_offset_days,
               w.schedule_milestone_slug, w.milestone_date, w.window_start_date, w.window_end_date,
               w.retired_at, w.result_count, w.completed_on, w.held_back)
              IS DISTINCT FROM
              (EXCLUDED.patient_id, EXCLUDED.activity_content_slug, EXCLUDED.schedule_id,
               EXCLUDED.schedule_slug, EXCLUDED.schedule_start_offset_days,
               EXCLUDED.schedule_end_offset_days, EXCLUDED.schedule_milestone_slug,
               EXCLUDED.milestone_date, EXCLUDED.window_start_date, EXCLUDED.window_end_date,
               EXCLUDED.retired_at, EXCLUDED.result_count, EXCLUDED.completed_on, EXCLUDED.held_back)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
    INTO rows_inserted, rows_updated
    FROM written;
END;
$$;

COMMENT ON FUNCTION pipeline._write_windows(boolean, bigint, bigint) IS
    'Upserts the window rows of pg_temp.run_window (all when p_patient_journey_id is NULL); writes nothing for '
    'unchanged pairs.';

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._write_windows(boolean, bigint, bigint) FROM PUBLIC;
