-- Keeps pipeline.adherence_group equal to the reported window rows (not retired, not held
-- back) counted per group: each statement that writes the window table adds its new rows and
-- subtracts its old ones, per group, and drops the groups it emptied. Statement-level, with
-- transition tables: one upsert per statement, not one per row (a full load inserts millions).
-- PostgreSQL allows transition tables only on single-event triggers, hence one trigger per
-- event, all calling this function (pipeline._install_adherence_counts creates them); a
-- TRUNCATE empties the counts too.
-- Runs as the role that writes the window table: only its owner may (runs write it as such).
CREATE OR REPLACE FUNCTION pipeline._count_adherence_groups()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
-- hash the rows into their groups: the plan is made for the first statement's row count (a few
-- rows, say), and sorting tens of thousands by their texts costs several times more
SET enable_sort = off
AS $$
DECLARE
    v_emptied tid[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE pipeline.adherence_group;
        RETURN NULL;
    END IF;
    -- the rows a statement wrote count in their groups, the rows it replaced or deleted no more
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO pipeline.adherence_group AS g
            (activity_id, activity_content_slug, schedule_milestone_slug, schedule_start_offset_days,
             settled_rank, window_start_date, window_end_date, pairs)
        SELECT c.activity_id, c.activity_content_slug, c.schedule_milestone_slug, c.schedule_start_offset_days,
               c.settled_rank,
               CASE WHEN c.settled_rank IS NULL THEN c.window_start_date END,
               CASE WHEN c.settled_rank IS NULL THEN c.window_end_date END,
               count(*)
        FROM (SELECT n.activity_id, n.activity_content_slug, n.schedule_milestone_slug,
                     n.schedule_start_offset_days, n.window_start_date, n.window_end_date,
                     pipeline._settled_rank(n.schedule_id, n.schedule_milestone_slug, n.milestone_date,
                                            n.completed_on, n.window_start_date, n.window_end_date,
                                            n.result_count) AS settled_rank
              FROM new_rows AS n
              WHERE n.retired_at IS NULL AND NOT n.held_back) AS c
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (activity_id, pg_catalog.md5(activity_content_slug), schedule_milestone_slug,
                     schedule_start_offset_days, settled_rank, window_start_date, window_end_date)
            DO UPDATE SET pairs = g.pairs + EXCLUDED.pairs;
    END IF;
    -- A group this subtracts the last rows from is dropped: found by its row id (the upsert's
    -- new version, which this transaction holds locked until the DELETE), not by an index on
    -- pairs, which would keep every update of a count from staying on its page (HOT). Adding
    -- brings a group to nought only where its count was already wrong (rows written while the
    -- owner had the triggers disabled): migrate counts such groups again.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        WITH counted AS (
            INSERT INTO pipeline.adherence_group AS g
                (activity_id, activity_content_slug, schedule_milestone_slug, schedule_start_offset_days,
                 settled_rank, window_start_date, window_end_date, pairs)
            SELECT c.activity_id, c.activity_content_slug, c.schedule_milestone_slug, c.schedule_start_offset_days,
                   c.settled_rank,
                   CASE WHEN c.settled_rank IS NULL THEN c.window_start_date END,
                   CASE WHEN c.settled_rank IS NULL THEN c.window_end_date END,
                   - count(*)
            FROM (SELECT o.activity_id, o.activity_content_slug, o.schedule_milestone_slug,
                         o.schedule_start_offset_days, o.window_start_date, o.window_end_date,
                         pipeline._settled_rank(o.schedule_id, o.schedule_milestone_slug, o.milestone_date,
                                                o.completed_on, o.window_start_date, o.window_end_date,
                                                o.result_count) AS settled_rank
                  FROM old_rows AS o
                  WHERE o.retired_at IS NULL AND NOT o.held_back) AS c
            GROUP BY 1, 2, 3, 4, 5, 6, 7
            ON CONFLICT (activity_id, pg_catalog.md5(activity_content_slug), schedule_milestone_slug,
                         schedule_start_offset_days, settled_rank, window_start_date, window_end_date)
                DO UPDATE SET pairs = g.pairs + EXCLUDED.pairs
            RETURNING g.ctid, g.pairs
        )
        SELECT array_agg(c.ctid) FILTER (WHERE c.pairs = 0) INTO v_emptied FROM counted AS c;
    END IF;
    IF v_emptied IS NOT NULL THEN
        DELETE FROM pipeline.adherence_group AS g WHERE g.ctid = ANY (v_emptied) AND g.pairs = 0;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION pipeline._count_adherence_groups() IS
    'Trigger of the window table: keeps pipeline.adherence_group current, one upsert per statement.';

-- A trigger function runs only as a trigger; nobody calls it.
REVOKE ALL ON FUNCTION pipeline._count_adherence_groups() FROM PUBLIC;
