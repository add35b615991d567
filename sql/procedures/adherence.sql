-- Adherence: whether the patient did each activity in its window, as of a date (statuses and
-- their order: README, "Adherence"). It reads only the pipeline's own tables, where each run
-- leaves what the statuses need: the window rows (their window, result_count, completed_on:
-- the date that decides a done_* status; retired rows left out) and held_back_pair (the pairs
-- the pipeline holds back, with their patient, activity and result count). Never public.*: a
-- function over the app's tables would run their owner's code (index expressions, casts) in a
-- reader's session and recount every result per query. The price: results as of the last run.
--
-- An SQL function with a standard body and neither SECURITY DEFINER nor SET clauses, so that
-- the planner inlines it: a filter such as WHERE patient_journey_id = 42 reaches the indexes of
-- the window table and held_back_pair, which a plpgsql, SECURITY DEFINER or SET-clause function
-- would hide. Inlined, it reads with the caller's rights: pipeline_reader may read those tables
-- and settings.report_time_zone (grant_access). Hence no SET search_path, unlike every other
-- routine: the standard body (BEGIN ATOMIC) binds every name when the function is created, so
-- the caller's search_path cannot change what it means, and "today" comes from
-- settings.report_time_zone, not from the session's TimeZone.
-- p_as_of NULL (the default) = today in settings.report_time_zone, read by a scalar subquery:
-- computed once, and (unlike a join with settings) it leaves the scan free to run in parallel.
CREATE OR REPLACE FUNCTION pipeline.adherence(p_as_of date DEFAULT NULL)
RETURNS TABLE (
    patient_id bigint,
    patient_journey_id bigint,
    activity_id bigint,
    activity_content_slug text,
    schedule_slug text,
    schedule_milestone_slug text,
    window_start_date date,
    window_end_date date,
    completed_on date,
    result_count integer,
    status text,
    held_back_reason pipeline.held_back_reason
)
LANGUAGE sql
STABLE
PARALLEL SAFE
BEGIN ATOMIC
    SELECT p.patient_id, p.patient_journey_id, p.activity_id, p.activity_content_slug, p.schedule_slug,
           p.schedule_milestone_slug, p.window_start_date, p.window_end_date, p.completed_on, p.result_count,
           CASE WHEN p.held_back_reason IS NOT NULL THEN 'held_back'
                WHEN p.no_window THEN 'no_window'
                WHEN p.completed_on OPERATOR(pg_catalog.<) p.window_start_date THEN 'done_early'
                WHEN p.completed_on OPERATOR(pg_catalog.>) p.window_end_date THEN 'done_late'
                WHEN p.completed_on IS NOT NULL THEN 'done_in_window'
                WHEN p.result_count OPERATOR(pg_catalog.>) 0 THEN 'done_undated'
                WHEN p.window_end_date OPERATOR(pg_catalog.<)
                     coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                   FROM pipeline.settings AS s)) THEN 'overdue'
                WHEN p.window_start_date OPERATOR(pg_catalog.>)
                     coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                   FROM pipeline.settings AS s)) THEN 'not_yet_open'
                ELSE 'open'
           END,
           p.held_back_reason
    FROM (
        SELECT w.patient_id, w.patient_journey_id, w.activity_id, w.activity_content_slug, w.schedule_slug,
               w.schedule_milestone_slug, w.window_start_date, w.window_end_date, w.completed_on, w.result_count,
               NULL::pipeline.held_back_reason,
               -- no window can be known: no schedule, or its milestone has no date here
               (w.schedule_id IS NULL OR (w.schedule_milestone_slug IS NOT NULL AND w.milestone_date IS NULL))
        FROM pipeline.patient_journey_schedule_window AS w
        -- a pair held back now may keep the window row it had (marked held_back): it is
        -- reported held back, once, below
        WHERE w.retired_at IS NULL AND NOT w.held_back
        UNION ALL
        SELECT h.patient_id, h.patient_journey_id, h.activity_id, h.activity_content_slug, h.schedule_slug,
               h.milestone_slug, NULL::date, NULL::date, NULL::date, h.result_count, h.held_back, false
        FROM pipeline.held_back_pair AS h
    ) AS p (patient_id, patient_journey_id, activity_id, activity_content_slug, schedule_slug,
            schedule_milestone_slug, window_start_date, window_end_date, completed_on, result_count,
            held_back_reason, no_window);
END;

COMMENT ON FUNCTION pipeline.adherence(date) IS
    'One row per pair the pipeline knows (window rows not retired, and held-back pairs) with its adherence '
    'status as of p_as_of (NULL = today in settings.report_time_zone): held_back, no_window, done_in_window, '
    'done_late, done_early, done_undated, overdue, not_yet_open, open, decided in that order. Survey results '
    'as of the last run. Inlined, so filters reach the indexes.';

CREATE OR REPLACE VIEW pipeline.activity_adherence AS
SELECT * FROM pipeline.adherence(NULL);

COMMENT ON VIEW pipeline.activity_adherence IS
    'pipeline.adherence() as of today in settings.report_time_zone.';
