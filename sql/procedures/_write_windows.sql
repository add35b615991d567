-- The one statement that writes the window table: loadable candidates (all of them, or the one
-- pair named) inserted when new, updated in place when a value changed, untouched otherwise.
CREATE OR REPLACE FUNCTION pipeline._write_windows(p_patient_journey_id bigint,
                                                   p_activity_id bigint,
                                                   OUT rows_inserted bigint,
                                                   OUT rows_updated bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    WITH written AS (
        INSERT INTO pipeline.patient_journey_schedule_window AS w
            (patient_id, patient_journey_id, activity_id, activity_content_slug,
             schedule_id, schedule_slug, schedule_start_offset_days, schedule_end_offset_days,
             schedule_milestone_slug, milestone_date, window_start_date, window_end_date)
        SELECT c.patient_id, c.patient_journey_id, c.activity_id, c.content_slug,
               c.schedule_id, c.schedule_slug, c.start_offset_days, c.end_offset_days,
               c.milestone_slug, c.milestone_date, c.window_start_date, c.window_end_date
        FROM pg_temp.run_candidate AS c
        WHERE c.held_back IS NULL
          AND (p_patient_journey_id IS NULL
               OR (c.patient_journey_id = p_patient_journey_id AND c.activity_id = p_activity_id))
        ON CONFLICT (patient_journey_id, activity_id) DO UPDATE
        SET patient_id = EXCLUDED.patient_id,
            activity_content_slug = EXCLUDED.activity_content_slug,
            schedule_id = EXCLUDED.schedule_id,
            schedule_slug = EXCLUDED.schedule_slug,
            schedule_start_offset_days = EXCLUDED.schedule_start_offset_days,
            schedule_end_offset_days = EXCLUDED.schedule_end_offset_days,
            schedule_milestone_slug = EXCLUDED.schedule_milestone_slug,
            milestone_date = EXCLUDED.milestone_date,
            window_start_date = EXCLUDED.window_start_date,
            window_end_date = EXCLUDED.window_end_date,
            updated_at = now()
        WHERE (w.patient_id, w.activity_content_slug, w.schedule_id, w.schedule_slug,
               w.schedule_start_offset_days, w.schedule_end_offset_days,
               w.schedule_milestone_slug, w.milestone_date, w.window_start_date, w.window_end_date)
              IS DISTINCT FROM
              (EXCLUDED.patient_id, EXCLUDED.activity_content_slug, EXCLUDED.schedule_id,
               EXCLUDED.schedule_slug, EXCLUDED.schedule_start_offset_days,
               EXCLUDED.schedule_end_offset_days, EXCLUDED.schedule_milestone_slug,
               EXCLUDED.milestone_date, EXCLUDED.window_start_date, EXCLUDED.window_end_date)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
    INTO rows_inserted, rows_updated
    FROM written;
END;
$$;

COMMENT ON FUNCTION pipeline._write_windows(bigint, bigint) IS
    'Upserts loadable rows of run_candidate (all when p_patient_journey_id is NULL); writes nothing for unchanged pairs.';
