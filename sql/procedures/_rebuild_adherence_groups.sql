-- pipeline.adherence_group counted again from the window table, which it locks against writes
-- meanwhile: migrate calls it after creating the triggers that keep it current (so a window
-- table written before them, or by hand with triggers disabled, is counted right again).
CREATE OR REPLACE FUNCTION pipeline._rebuild_adherence_groups()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_groups bigint;
BEGIN
    LOCK TABLE pipeline.patient_journey_schedule_window IN SHARE MODE;
    DELETE FROM pipeline.adherence_group;  -- not TRUNCATE: a report meanwhile reads the counts before
    INSERT INTO pipeline.adherence_group
        (activity_id, activity_content_slug, schedule_milestone_slug, schedule_start_offset_days,
         settled_rank, window_start_date, window_end_date, pairs)
    SELECT c.activity_id, c.activity_content_slug, c.schedule_milestone_slug, c.schedule_start_offset_days,
           c.settled_rank,
           CASE WHEN c.settled_rank IS NULL THEN c.window_start_date END,
           CASE WHEN c.settled_rank IS NULL THEN c.window_end_date END,
           count(*)
    FROM (SELECT w.activity_id, w.activity_content_slug, w.schedule_milestone_slug, w.schedule_start_offset_days,
                 w.window_start_date, w.window_end_date,
                 pipeline._settled_rank(w.schedule_id, w.schedule_milestone_slug, w.milestone_date, w.completed_on,
                                        w.window_start_date, w.window_end_date, w.result_count) AS settled_rank
          FROM pipeline.patient_journey_schedule_window AS w
          WHERE w.retired_at IS NULL AND NOT w.held_back) AS c
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    GET DIAGNOSTICS v_groups = ROW_COUNT;
    RETURN v_groups;
END;
$$;

COMMENT ON FUNCTION pipeline._rebuild_adherence_groups() IS
    'Counts pipeline.adherence_group again from the window table (locked against writes meanwhile); returns its groups.';

-- Called by migrate, as the owner.
REVOKE ALL ON FUNCTION pipeline._rebuild_adherence_groups() FROM PUBLIC;
