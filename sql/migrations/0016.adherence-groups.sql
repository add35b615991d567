-- depends: 0015.adherence-report
-- Issue 10: the adherence report within 3x of a count(*) of the window table. Counting the
-- statuses of millions of window rows per report costs it more than three scans (each row's
-- columns read, its status computed and hashed); the report now reads these counts instead,
-- kept current by triggers on the window table (pipeline._count_adherence_groups); migrate
-- creates them, last, and counts this table again from the window table
-- (pipeline._install_adherence_counts).
--
-- One row per group of reported window rows (not retired, not held back) that share the
-- columns a report groups by and their status: settled_rank is the status rank (2 no_window ..
-- 6 done_undated) when the run's data decides it, NULL when the as-of date does (overdue,
-- not_yet_open, open), and then the window's dates decide it, so they are part of the key;
-- otherwise they are NULL. Held-back pairs are counted from held_back_pair.
CREATE TABLE pipeline.adherence_group (
    activity_id bigint NOT NULL,
    activity_content_slug text,
    schedule_milestone_slug text,
    schedule_start_offset_days integer,
    settled_rank integer,
    window_start_date date,
    window_end_date date,
    pairs bigint NOT NULL
);

-- The key. A content slug is the application's text, of any length, and a btree entry holds at
-- most 2,704 bytes (a longer slug would fail every write of its pairs): the key holds its md5.
-- Two slugs of one activity with one md5 would share a group and its label, which would take
-- two versions of the same activity's slug among the window rows at once, one crafted.
CREATE UNIQUE INDEX adherence_group_key ON pipeline.adherence_group
    (activity_id, pg_catalog.md5(activity_content_slug), schedule_milestone_slug, schedule_start_offset_days,
     settled_rank, window_start_date, window_end_date) NULLS NOT DISTINCT;

-- the groups a statement emptied, found without a scan of the table
CREATE INDEX adherence_group_empty_idx ON pipeline.adherence_group (activity_id) WHERE pairs = 0;

COMMENT ON TABLE pipeline.adherence_group IS
    'Reported window rows (not retired, not held back) counted per activity, milestone, start offset and status: '
    'what the adherence report reads. Kept current by triggers on the window table; migrate rebuilds it.';
COMMENT ON COLUMN pipeline.adherence_group.settled_rank IS
    'The status rank (2 no_window .. 6 done_undated) when the run''s data decides it; NULL when the as-of date '
    'does, by window_start_date and window_end_date (7 overdue, 8 not_yet_open, 9 open).';

-- A window row's status rank when the run's data decides it (2 no_window, 5 done_early, 4
-- done_late, 3 done_in_window, 6 done_undated, in the order pipeline.adherence decides them);
-- NULL when the as-of date does. pipeline._adherence and the triggers both use it, so the counts
-- and the rows agree; what adherence_group holds depends on it, so a change to it is a migration
-- that rebuilds that table. An SQL function with a standard body: inlined where it is used.
CREATE FUNCTION pipeline._settled_rank(p_schedule_id bigint, p_milestone_slug text, p_milestone_date date,
                                       p_completed_on date, p_window_start_date date,
                                       p_window_end_date date, p_result_count integer)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN CASE WHEN p_schedule_id IS NULL
                 OR (p_milestone_slug IS NOT NULL AND p_milestone_date IS NULL) THEN 2  -- no_window
            WHEN p_completed_on OPERATOR(pg_catalog.<) p_window_start_date THEN 5  -- done_early
            WHEN p_completed_on OPERATOR(pg_catalog.>) p_window_end_date THEN 4  -- done_late
            WHEN p_completed_on IS NOT NULL THEN 3  -- done_in_window
            WHEN p_result_count OPERATOR(pg_catalog.>) 0 THEN 6  -- done_undated
       END;

COMMENT ON FUNCTION pipeline._settled_rank(bigint, text, date, date, date, date, integer) IS
    'A window row''s status rank when its data decides it (2 no_window .. 6 done_undated); NULL when the as-of '
    'date does (7 overdue, 8 not_yet_open, 9 open).';
