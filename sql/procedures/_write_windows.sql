-- The one statement that writes the window table: loadable candidates (all of them, or the one
-- pair named) inserted when new, updated in place when a value changed, untouched otherwise.
-- p_skip_unchanged_by_join: for millions of candidates, drop the unchanged ones with one join
-- before ON CONFLICT; for a few thousand, ON CONFLICT's index probes are cheaper than that join.
CREATE OR REPLACE FUNCTION pipeline._write_windows(p_candidates text,
                                                   p_skip_unchanged_by_join boolean,
                                                   p_patient_journey_id bigint,
                                                   p_activity_id bigint,
                                                   OUT rows_inserted bigint,
                                                   OUT rows_updated bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    -- plpgsql_check takes p_candidates for untrusted text: it is the SQL _candidate_queries built
    -- (its values quoted by format's %L and %I), and only the owner's own run can call this
    -- function (REVOKE below; a test checks it), so its EXECUTE is not checked for injection.
    PERFORM 'PRAGMA:DISABLE:SECURITY_WARNINGS';
    EXECUTE format($sql$
        WITH written AS (
            INSERT INTO pipeline.patient_journey_schedule_window AS w
                (patient_id, patient_journey_id, activity_id, activity_content_slug,
                 schedule_id, schedule_slug, schedule_start_offset_days, schedule_end_offset_days,
                 schedule_milestone_slug, milestone_date, window_start_date, window_end_date)
            SELECT c.patient_id, c.patient_journey_id, c.activity_id, c.content_slug,
                   c.schedule_id, c.schedule_slug, c.start_offset_days, c.end_offset_days,
                   c.milestone_slug, c.milestone_date, c.window_start_date, c.window_end_date
            FROM (%s) AS c
            LEFT JOIN pipeline.patient_journey_schedule_window AS old
                ON $3 AND old.patient_journey_id = c.patient_journey_id AND old.activity_id = c.activity_id
            WHERE c.held_back IS NULL
              AND ($1 IS NULL OR (c.patient_journey_id = $1 AND c.activity_id = $2))
              AND (old.patient_journey_id IS NULL
                   OR (old.patient_id, old.activity_content_slug, old.schedule_id, old.schedule_slug,
                       old.schedule_start_offset_days, old.schedule_end_offset_days,
                       old.schedule_milestone_slug, old.milestone_date, old.window_start_date,
                       old.window_end_date)
                      IS DISTINCT FROM
                      (c.patient_id, c.content_slug, c.schedule_id, c.schedule_slug, c.start_offset_days,
                       c.end_offset_days, c.milestone_slug, c.milestone_date, c.window_start_date,
                       c.window_end_date))
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
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
    $sql$, p_candidates)
    INTO rows_inserted, rows_updated
    USING p_patient_journey_id, p_activity_id, p_skip_unchanged_by_join;
END;
$$;

COMMENT ON FUNCTION pipeline._write_windows(text, boolean, bigint, bigint) IS
    'Upserts the loadable candidates (all when p_patient_journey_id is NULL); writes nothing for unchanged pairs.';

-- It runs the SQL text it is given: a step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._write_windows(text, boolean, bigint, bigint) FROM PUBLIC;
