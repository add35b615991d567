-- What the adherence report counts: the pairs of pipeline._adherence per activity, milestone,
-- start offset and status rank, as of p_as_of (NULL = today in settings.report_time_zone), read
-- from the counts the window table's triggers keep (pipeline.adherence_group: a group whose
-- status the as-of date decides is counted by its window's dates) and from held_back_pair (rank
-- 1, no offset). A report reads thousands of groups, not millions of pairs (issue 10). Groups
-- may repeat a key: the report sums them.
-- Like pipeline._adherence, an SQL function with a standard body, reading with the caller's
-- rights (pipeline_reader may read both tables); hence no SET search_path.
CREATE OR REPLACE FUNCTION pipeline._adherence_counts(p_as_of date)
RETURNS TABLE (
    activity_id bigint,
    activity_content_slug text,
    schedule_milestone_slug text,
    schedule_start_offset_days integer,
    status_rank integer,
    pairs bigint
)
LANGUAGE sql
STABLE
PARALLEL SAFE
BEGIN ATOMIC
    SELECT g.activity_id, g.activity_content_slug, g.schedule_milestone_slug, g.schedule_start_offset_days,
           coalesce(g.settled_rank,
                    CASE WHEN g.window_end_date OPERATOR(pg_catalog.<) d.as_of THEN 7  -- overdue
                         WHEN g.window_start_date OPERATOR(pg_catalog.>) d.as_of THEN 8  -- not_yet_open
                         ELSE 9  -- open
                    END),
           g.pairs
    FROM pipeline.adherence_group AS g,
         (SELECT coalesce(p_as_of, (SELECT (pg_catalog.now() AT TIME ZONE s.report_time_zone)::date
                                    FROM pipeline.settings AS s)) AS as_of) AS d
    UNION ALL
    SELECT h.activity_id, h.activity_content_slug, h.milestone_slug, NULL::integer, 1, pg_catalog.count(*)
    FROM pipeline.held_back_pair AS h
    GROUP BY h.activity_id, h.activity_content_slug, h.milestone_slug;
END;

COMMENT ON FUNCTION pipeline._adherence_counts(date) IS
    'The pairs of pipeline._adherence counted per activity, milestone, start offset and status rank, from '
    'pipeline.adherence_group and held_back_pair: what the adherence report reads. A key may repeat: sum them.';
