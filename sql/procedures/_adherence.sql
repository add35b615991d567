-- What pipeline.adherence reports, with the status as its rank (1 = held_back .. 9 = open, the
-- order of README "Adherence") and the window's start offset: one row per pair the pipeline
-- knows. pipeline.adherence names the status. The report (`python -m pytools report`) does not
-- read it: it sums the same pairs already counted (pipeline._adherence_counts), which the tests
-- compare with this function grouped.
--
-- Like pipeline.adherence, an SQL function with a standard body (BEGIN ATOMIC) and neither
-- SECURITY DEFINER nor SET clauses, so that the planner inlines it (a filter reaches the
-- indexes) and it reads with the caller's rights (see adherence.sql); hence no SET search_path.
-- Shaped for the planner: the filter on the window rows sits outside the UNION ALL and each
-- branch decides its own status, so each branch is a plain scan of its table (a WHERE inside a
-- branch would keep it a subquery, and a CASE over the union one more step per row), and the
-- two scans run in parallel.
-- p_as_of NULL = today in settings.report_time_zone, read by a scalar subquery: computed once,
-- and (unlike a join with settings) it leaves the scan free to run in parallel.
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
               -- 2 no_window .. 6 done_undated when the run's data decides it (the counts of
               -- pipeline.adherence_group use the same function), else the as-of date does
               coalesce(pipeline._settled_rank(w.schedule_id, w.schedule_milestone_slug, w.milestone_date,
                                               w.completed_on, w.window_start_date, w.window_end_date,
                                               w.result_count),
                        CASE WHEN w.window_end_date OPERATOR(pg_catalog.<)
                                  coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                                     FROM pipeline.settings AS s)) THEN 7  -- overdue
                             WHEN w.window_start_date OPERATOR(pg_catalog.>)
                                  coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                                     FROM pipeline.settings AS s)) THEN 8  -- not_yet_open
                             ELSE 9  -- open
                        END),
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
    'and the window''s start offset. Inlined, so filters reach the indexes.';
