-- The window table's counting triggers (pipeline._count_adherence_groups), created where one is
-- missing, disabled or calls another function, then pipeline.adherence_group counted again from
-- the window rows (so rows written before the triggers, or while the owner had them disabled,
-- count right again); returns the groups. migrate calls it last, just before it commits: the
-- triggers' DDL and the count lock the window table against writes (a run's), and a step after
-- them that waited (for a reader holding a view migrate replaces, say) would keep every run
-- waiting too. A run's load into an empty window table calls it as well, having inserted with
-- the INSERT trigger dropped. Counting takes one to two seconds per 100,000 patient journeys.
CREATE OR REPLACE FUNCTION pipeline._install_adherence_counts()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_groups bigint;
BEGIN
    IF (SELECT count(*) FROM pg_catalog.pg_trigger AS t
        WHERE t.tgrelid = 'pipeline.patient_journey_schedule_window'::regclass
          AND t.tgname = ANY (ARRAY['count_adherence_inserted', 'count_adherence_updated',
                                    'count_adherence_deleted', 'count_adherence_truncated'])
          AND t.tgfoid = 'pipeline._count_adherence_groups()'::regprocedure
          AND t.tgenabled = 'O') < 4 THEN
        CREATE OR REPLACE TRIGGER count_adherence_inserted
            AFTER INSERT ON pipeline.patient_journey_schedule_window
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pipeline._count_adherence_groups();
        CREATE OR REPLACE TRIGGER count_adherence_updated
            AFTER UPDATE ON pipeline.patient_journey_schedule_window
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pipeline._count_adherence_groups();
        CREATE OR REPLACE TRIGGER count_adherence_deleted
            AFTER DELETE ON pipeline.patient_journey_schedule_window
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION pipeline._count_adherence_groups();
        CREATE OR REPLACE TRIGGER count_adherence_truncated
            AFTER TRUNCATE ON pipeline.patient_journey_schedule_window
            FOR EACH STATEMENT EXECUTE FUNCTION pipeline._count_adherence_groups();
    END IF;
    LOCK TABLE pipeline.patient_journey_schedule_window IN SHARE MODE;
    -- counted into a table of its own first: CREATE TABLE AS, unlike INSERT, may read in
    -- parallel (at 100,000 journeys 0.9 against 1.5 s); the groups are few
    CREATE TEMP TABLE run_adherence_group ON COMMIT DROP AS
    SELECT c.activity_id, c.activity_content_slug, c.schedule_milestone_slug, c.schedule_start_offset_days,
           c.settled_rank,
           CASE WHEN c.settled_rank IS NULL THEN c.window_start_date END AS window_start_date,
           CASE WHEN c.settled_rank IS NULL THEN c.window_end_date END AS window_end_date,
           count(*) AS pairs
    FROM (SELECT w.activity_id, w.activity_content_slug, w.schedule_milestone_slug, w.schedule_start_offset_days,
                 w.window_start_date, w.window_end_date,
                 pipeline._settled_rank(w.schedule_id, w.schedule_milestone_slug, w.milestone_date, w.completed_on,
                                        w.window_start_date, w.window_end_date, w.result_count) AS settled_rank
          FROM pipeline.patient_journey_schedule_window AS w
          WHERE w.retired_at IS NULL AND NOT w.held_back) AS c
    GROUP BY 1, 2, 3, 4, 5, 6, 7;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_adherence_group (activity_id bigint, activity_content_slug text, '
            'schedule_milestone_slug text, schedule_start_offset_days integer, settled_rank integer, '
            'window_start_date date, window_end_date date, pairs bigint)';
    DELETE FROM pipeline.adherence_group;  -- not TRUNCATE: a report meanwhile reads the counts before
    INSERT INTO pipeline.adherence_group
        (activity_id, activity_content_slug, schedule_milestone_slug, schedule_start_offset_days,
         settled_rank, window_start_date, window_end_date, pairs)
    SELECT g.activity_id, g.activity_content_slug, g.schedule_milestone_slug, g.schedule_start_offset_days,
           g.settled_rank, g.window_start_date, g.window_end_date, g.pairs
    FROM pg_temp.run_adherence_group AS g;
    GET DIAGNOSTICS v_groups = ROW_COUNT;
    DROP TABLE pg_temp.run_adherence_group;
    RETURN v_groups;
END;
$$;

COMMENT ON FUNCTION pipeline._install_adherence_counts() IS
    'Creates the window table''s counting triggers where needed and counts pipeline.adherence_group again from '
    'the window rows (locked against writes meanwhile); returns its groups. migrate calls it last, a run''s load '
    'into an empty window table after its insert.';

-- Called by migrate and by runs, as the owner.
REVOKE ALL ON FUNCTION pipeline._install_adherence_counts() FROM PUBLIC;
