-- The report of the earlier release counts pipeline._adherence itself.
DROP TRIGGER IF EXISTS count_adherence_inserted ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_updated ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_deleted ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_truncated ON pipeline.patient_journey_schedule_window;
DROP FUNCTION IF EXISTS pipeline._count_adherence_groups();
DROP FUNCTION IF EXISTS pipeline._install_adherence_counts();
DROP FUNCTION IF EXISTS pipeline._adherence_counts(date);
DROP TABLE pipeline.adherence_group;
-- pipeline._adherence of the earlier release, which decides every status itself: replaced in
-- place, so that views built on pipeline.adherence stay, before _settled_rank goes.
CREATE OR REPLACE FUNCTION pipeline._adherence(p_as_of date)
RETURNS TABLE (
    patient_id bigint,
    patient_journey_id bigint,
    activity_id bigint,
    activity_content_slug text,
    schedule_slug text,
    schedule_milestone_slug text,
    schedule_start_offset_days integer,
    window_start_date date,
    window_end_date date,
    completed_on date,
    result_count integer,
    status_rank integer,
    held_back_reason pipeline.held_back_reason
)
LANGUAGE sql
STABLE
PARALLEL SAFE
BEGIN ATOMIC
    SELECT p.patient_id, p.patient_journey_id, p.activity_id, p.activity_content_slug, p.schedule_slug,
           p.schedule_milestone_slug, p.schedule_start_offset_days, p.window_start_date, p.window_end_date,
           p.completed_on, p.result_count, p.status_rank, p.held_back_reason
    FROM (
        SELECT w.patient_id, w.patient_journey_id, w.activity_id, w.activity_content_slug, w.schedule_slug,
               w.schedule_milestone_slug, w.schedule_start_offset_days, w.window_start_date, w.window_end_date,
               w.completed_on, w.result_count,
               -- 1 held_back: the other branch
               CASE WHEN w.schedule_id IS NULL
                         OR (w.schedule_milestone_slug IS NOT NULL AND w.milestone_date IS NULL) THEN 2  -- no_window
                    WHEN w.completed_on OPERATOR(pg_catalog.<) w.window_start_date THEN 5  -- done_early
                    WHEN w.completed_on OPERATOR(pg_catalog.>) w.window_end_date THEN 4  -- done_late
                    WHEN w.completed_on IS NOT NULL THEN 3  -- done_in_window
                    WHEN w.result_count OPERATOR(pg_catalog.>) 0 THEN 6  -- done_undated
                    WHEN w.window_end_date OPERATOR(pg_catalog.<)
                         coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                            FROM pipeline.settings AS s)) THEN 7  -- overdue
                    WHEN w.window_start_date OPERATOR(pg_catalog.>)
                         coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                            FROM pipeline.settings AS s)) THEN 8  -- not_yet_open
                    ELSE 9  -- open
               END,
               NULL::pipeline.held_back_reason,
               -- a pair held back now may keep the window row it had (marked held_back): it is
               -- reported held back, once, from held_back_pair
               w.retired_at IS NULL AND NOT w.held_back
        FROM pipeline.patient_journey_schedule_window AS w
        UNION ALL
        SELECT h.patient_id, h.patient_journey_id, h.activity_id, h.activity_content_slug, h.schedule_slug,
               h.milestone_slug, NULL::integer, NULL::date, NULL::date, NULL::date, h.result_count,
               1, h.held_back, true
        FROM pipeline.held_back_pair AS h
    ) AS p (patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_slug,
            schedule_milestone_slug, schedule_start_offset_days, window_start_date, window_end_date,
            completed_on, result_count, status_rank, held_back_reason, reported)
    WHERE p.reported;
END;

COMMENT ON FUNCTION pipeline._adherence(date) IS
    'pipeline.adherence with the status as its rank, 1 = held_back .. 9 = open, the order statuses are decided in, '
    'and the window''s start offset: what the adherence report groups on. Inlined, so filters reach the indexes.';

DROP FUNCTION pipeline._settled_rank(bigint, text, date, date, date, date, integer);
