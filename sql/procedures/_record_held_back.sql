-- Bring pipeline.held_back_pair up to date with the recomputed pairs held back now
-- (pg_temp.run_held_back_row: all of them, or those of the incremental scope when p_scoped),
-- keep pipeline.held_back_group's counts in step with the pairs it released and added, then
-- write one failure row per problem: per broken schedule, per missing reference, per unusable
-- milestone, per out-of-range row. Returns how many pairs are held back now.
-- The pairs released and added go to pg_temp.run_held_back_change (-1, +1), which
-- _mark_held_back_windows reads after the write: in every run but a first load, held_back_pair
-- is changed by difference, so that a pair held back as before is neither deleted nor
-- inserted again (a full run over an unchanged source at 100,000 journeys rewrote 341,000
-- such pairs, 1.4 s, and looked each one's window row up again, 0.8 s).
-- plan_cache_mode: p_scoped decides which statements read what, so each plan is made for its value.
CREATE OR REPLACE FUNCTION pipeline._record_held_back(p_run_id bigint, p_scoped boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_rebuild boolean := false;
    v_held_back bigint;
BEGIN
    -- plpgsql_check cannot know the temp tables and views of the steps before: the pragmas tell
    -- it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope_activity (activity_id bigint)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_schedule (schedule_id bigint, schedule_slug text, start_offset_days integer, '
            'end_offset_days integer, milestone_slug text, sqlstate text, error_message text, error_detail text)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_held_back_row (patient_journey_id bigint, activity_id bigint, '
            'held_back pipeline.held_back_reason, schedule_id bigint, schedule_slug text, milestone_slug text, '
            'milestone_date date, start_offset_days integer, end_offset_days integer, patient_id bigint, '
            'activity_content_slug text, result_count integer)';
    -- each pair released (-1) or newly held back (+1) by this run
    CREATE TEMP TABLE run_held_back_change (
        change integer, held_back pipeline.held_back_reason, schedule_id bigint, patient_journey_id bigint,
        activity_id bigint, milestone_slug text
    ) ON COMMIT DROP;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_held_back_change (change integer, held_back pipeline.held_back_reason, '
            'schedule_id bigint, patient_journey_id bigint, activity_id bigint, milestone_slug text)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_held_back (patient_journey_id bigint, activity_id bigint, '
            'held_back pipeline.held_back_reason, schedule_id bigint, schedule_slug text, milestone_slug text, '
            'milestone_date date, start_offset_days integer, end_offset_days integer, patient_id bigint, '
            'activity_content_slug text, result_count integer)';
    IF p_scoped THEN
        -- The scope's pairs held back now, once, for the statements below: a pair held back as
        -- before (most of them: an unusable activity's, on a rescheduled journey) is left as it
        -- is, neither deleted nor inserted again, and is no change to count
        CREATE TEMP TABLE run_held_back (LIKE pipeline.held_back_pair) ON COMMIT DROP;
        INSERT INTO pg_temp.run_held_back SELECT r.* FROM pg_temp.run_held_back_row AS r;
    ELSE
        -- Every pair held back now, with the view's columns, which are held_back_pair's (a test
        -- checks it)
        CREATE TEMP TABLE run_held_back ON COMMIT DROP AS SELECT r.* FROM pg_temp.run_held_back_row AS r;
    END IF;
    ANALYZE pg_temp.run_held_back;
    -- (with no pair held back now there is nothing to load: no lock)
    IF NOT p_scoped AND NOT EXISTS (SELECT FROM pipeline.held_back_pair)
       AND EXISTS (SELECT FROM pg_temp.run_held_back) THEN
        -- A first load (or one after a DBA emptied the table): both tables are the pipeline's
        -- own, and the run's lock keeps other runs out. Empty them and index after the insert
        -- (about twice as fast) only under an exclusive lock taken at once; should anyone be
        -- reading them (a dump, a DBA), wait for no one and write the difference below instead,
        -- which blocks no reader.
        v_rebuild := pipeline._lock_for_rebuild(
            ARRAY['pipeline.held_back_pair', 'pipeline.held_back_group']::regclass[], 'pipeline.held_back_pair_pkey');
        -- and looked at again under the lock: the owner may have written rows meanwhile
        v_rebuild := v_rebuild AND NOT EXISTS (SELECT FROM pipeline.held_back_pair);
    END IF;
    IF v_rebuild THEN
        TRUNCATE pipeline.held_back_pair, pipeline.held_back_group;
        ALTER TABLE pipeline.held_back_pair DROP CONSTRAINT held_back_pair_pkey;
        DROP INDEX pipeline.held_back_pair_activity_id_idx;
        WITH held AS (
            INSERT INTO pipeline.held_back_pair SELECT n.* FROM pg_temp.run_held_back AS n
            RETURNING held_back, schedule_id, patient_journey_id, activity_id, milestone_slug
        )
        INSERT INTO pg_temp.run_held_back_change SELECT 1, h.* FROM held AS h;
        ALTER TABLE pipeline.held_back_pair
            ADD CONSTRAINT held_back_pair_pkey PRIMARY KEY (patient_journey_id, activity_id);
        CREATE INDEX held_back_pair_activity_id_idx ON pipeline.held_back_pair (activity_id);
    ELSE
        -- released: the pairs (of the scope) not held back now as they were; with a scope, two
        -- statements, so that each finds its rows through its own index
        IF p_scoped THEN
            WITH released AS (
                DELETE FROM pipeline.held_back_pair AS h
                WHERE h.patient_journey_id IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s)
                  AND NOT EXISTS (SELECT FROM pg_temp.run_held_back AS n
                                  WHERE n.patient_journey_id = h.patient_journey_id AND n.activity_id = h.activity_id
                                    AND ROW(n.*) IS NOT DISTINCT FROM ROW(h.*))
                RETURNING h.held_back, h.schedule_id, h.patient_journey_id, h.activity_id, h.milestone_slug
            )
            INSERT INTO pg_temp.run_held_back_change SELECT -1, r.* FROM released AS r;
            WITH released AS (
                DELETE FROM pipeline.held_back_pair AS h
                WHERE h.activity_id IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s)
                  AND NOT EXISTS (SELECT FROM pg_temp.run_held_back AS n
                                  WHERE n.patient_journey_id = h.patient_journey_id AND n.activity_id = h.activity_id
                                    AND ROW(n.*) IS NOT DISTINCT FROM ROW(h.*))
                RETURNING h.held_back, h.schedule_id, h.patient_journey_id, h.activity_id, h.milestone_slug
            )
            INSERT INTO pg_temp.run_held_back_change SELECT -1, r.* FROM released AS r;
        ELSE
            WITH released AS (
                DELETE FROM pipeline.held_back_pair AS h
                WHERE NOT EXISTS (SELECT FROM pg_temp.run_held_back AS n
                                  WHERE n.patient_journey_id = h.patient_journey_id AND n.activity_id = h.activity_id
                                    AND ROW(n.*) IS NOT DISTINCT FROM ROW(h.*))
                RETURNING h.held_back, h.schedule_id, h.patient_journey_id, h.activity_id, h.milestone_slug
            )
            INSERT INTO pg_temp.run_held_back_change SELECT -1, r.* FROM released AS r;
        END IF;
        WITH held AS (
            INSERT INTO pipeline.held_back_pair
            SELECT n.* FROM pg_temp.run_held_back AS n
            -- a pair held back as before is there already
            WHERE NOT EXISTS (SELECT FROM pipeline.held_back_pair AS h
                              WHERE h.patient_journey_id = n.patient_journey_id AND h.activity_id = n.activity_id)
            -- and a patient journey id the application duplicates after this run checked for
            -- copies comes twice: one copy is kept (and counted), and the next run, which the
            -- copy queued, finds the copies and picks one as every run does
            ON CONFLICT (patient_journey_id, activity_id) DO NOTHING
            RETURNING held_back, schedule_id, patient_journey_id, activity_id, milestone_slug
        )
        INSERT INTO pg_temp.run_held_back_change SELECT 1, h.* FROM held AS h;
    END IF;
    IF NOT p_scoped THEN
        -- counted afresh below
        DELETE FROM pipeline.held_back_group;
        -- fresh statistics, or the next incremental run scans every pair to find its scope's
        IF EXISTS (SELECT FROM pg_temp.run_held_back_change) THEN
            ANALYZE pipeline.held_back_pair;
        END IF;
    END IF;

    -- A group is named by the columns its failure row names; the others are left NULL. The
    -- problems of one pair each are listed pair by pair below, not counted in groups. A full
    -- run counts every pair now held back; an incremental one adds its changes to the counts.
    INSERT INTO pipeline.held_back_group AS g
        (held_back, schedule_id, patient_journey_id, activity_id, milestone_slug, pairs)
    SELECT c.held_back,
           CASE WHEN c.held_back IN ('slug does not parse', 'missing schedule') THEN c.schedule_id END,
           CASE WHEN c.held_back = 'missing patient_journey' THEN c.patient_journey_id END,
           CASE WHEN c.held_back IN ('missing activity', 'missing schedule') THEN c.activity_id END,
           CASE WHEN c.held_back = 'milestone date column unusable' THEN c.milestone_slug END,
           sum(c.change)
    FROM (SELECT x.* FROM pg_temp.run_held_back_change AS x WHERE p_scoped
          UNION ALL
          SELECT 1, h.held_back, h.schedule_id, h.patient_journey_id, h.activity_id, h.milestone_slug
          FROM pipeline.held_back_pair AS h WHERE NOT p_scoped) AS c
    WHERE c.held_back NOT IN ('milestone date is infinite', 'window date out of range')
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT ON CONSTRAINT held_back_group_key DO UPDATE SET pairs = g.pairs + EXCLUDED.pairs;
    DELETE FROM pipeline.held_back_group AS g WHERE g.pairs = 0;

    INSERT INTO pipeline.pipeline_failures
        (run_id, stage, schedule_id, schedule_slug, patient_journey_id, activity_id,
         sqlstate, error_message, error_detail, rows_held_back)
    -- Every slug that does not parse, even one no pair uses yet: it is broken now.
    SELECT p_run_id, 'parse', s.schedule_id, s.schedule_slug, NULL::bigint, NULL::bigint,
           s.sqlstate, s.error_message, s.error_detail, coalesce(g.pairs, 0)
    FROM pg_temp.run_schedule AS s
    LEFT JOIN pipeline.held_back_group AS g
        ON g.held_back = 'slug does not parse' AND g.schedule_id = s.schedule_id
    WHERE s.error_message IS NOT NULL
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, g.patient_journey_id, NULL,
           '23503', format('patient journey %s does not exist; survey_result rows reference it', g.patient_journey_id),
           NULL, g.pairs
    FROM pipeline.held_back_group AS g
    WHERE g.held_back = 'missing patient_journey'
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, NULL, g.activity_id,
           '23503', format('activity %s does not exist; journey_activity or survey_result rows reference it', g.activity_id),
           NULL, g.pairs
    FROM pipeline.held_back_group AS g
    WHERE g.held_back = 'missing activity'
    UNION ALL
    SELECT p_run_id, 'match', g.schedule_id, NULL, NULL, NULL,
           '23503', format('schedule %s does not exist; activities %s reference it',
                           g.schedule_id, string_agg(DISTINCT g.activity_id::text, ', ')),
           NULL, sum(g.pairs)
    FROM pipeline.held_back_group AS g
    WHERE g.held_back = 'missing schedule'
    GROUP BY g.schedule_id
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, NULL, NULL,
           '42703', format('milestone %s: its date column %s is not a date or timestamp column of public.patient_journey',
                           m.milestone_slug, m.date_column),
           'Fix it with UPDATE pipeline.milestone SET date_column = ... WHERE milestone_slug = ...',
           coalesce(g.pairs, 0)
    FROM pipeline._milestone_date_columns() AS m
    LEFT JOIN pipeline.held_back_group AS g
        ON g.held_back = 'milestone date column unusable' AND g.milestone_slug = m.milestone_slug
    WHERE NOT m.usable
    UNION ALL
    SELECT p_run_id, 'load', h.schedule_id, h.schedule_slug, h.patient_journey_id, h.activity_id,
           '22008', format('%s: milestone %s on %s with offsets %s to %s',
                           h.held_back, h.milestone_slug, h.milestone_date,
                           coalesce(h.start_offset_days::text, 'open'), coalesce(h.end_offset_days::text, 'open')),
           NULL, 1
    FROM pipeline.held_back_pair AS h
    WHERE h.held_back IN ('milestone date is infinite', 'window date out of range');

    SELECT coalesce(sum(g.pairs), 0)
           + (SELECT count(*) FROM pipeline.held_back_pair AS h
              WHERE h.held_back IN ('milestone date is infinite', 'window date out of range'))
    INTO v_held_back
    FROM pipeline.held_back_group AS g;
    RETURN v_held_back;
END;
$$;

COMMENT ON FUNCTION pipeline._record_held_back(bigint, boolean) IS
    'Run step 3: updates held_back_pair and held_back_group, logs each problem of the run to pipeline_failures '
    'with the pairs it held back; returns their total.';

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._record_held_back(bigint, boolean) FROM PUBLIC;
