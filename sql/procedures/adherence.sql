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
-- The rows and their statuses come from pipeline._adherence (_adherence.sql), which decides the
-- status as its rank, the order below; this function names it. p_as_of NULL (the default) =
-- today in settings.report_time_zone.
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
    SELECT a.patient_id, a.patient_journey_id, a.activity_id, a.activity_content_slug, a.schedule_slug,
           a.schedule_milestone_slug, a.window_start_date, a.window_end_date, a.completed_on, a.result_count,
           (ARRAY['held_back', 'no_window', 'done_in_window', 'done_late', 'done_early', 'done_undated',
                  'overdue', 'not_yet_open', 'open'])[a.status_rank],
           a.held_back_reason
    FROM pipeline._adherence(p_as_of) AS a;
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
