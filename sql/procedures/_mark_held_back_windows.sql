-- Mark the window rows of the pairs held back now, so that adherence reports each such pair
-- once, from held_back_pair, without comparing every window row with it; the run that loads
-- the pair again writes its row unmarked (pg_temp.run_window). A pair held back is in the
-- source: a row retired before (the pair had gone) is no longer retired.
-- Run after the windows are written, not before: the two steps before read the patient
-- journeys in statements of their own, and a milestone date the application corrects between
-- them leaves a pair both held back and written unmarked, reported twice. Marked, it is
-- reported held back once, and the next run (the correction queued it) loads it.
-- Which pairs are looked up, in a full run over a loaded table: every run leaves each pair of
-- held_back_pair with its window row, if it has one, marked and not retired (retiring spares
-- them: _retire_unprescribed), and only runs write the window rows; so only a pair this run
-- held back anew (pg_temp.run_held_back_change, +1) or whose row it wrote (pg_temp.run_window:
-- in such a run, the rows it wrote) can need marking, not every pair held back (341,000
-- lookups, 0.8 s, at 100,000 journeys). An incremental run looks up its scope's pairs held
-- back now (pg_temp.run_held_back).
-- p_table_was_empty: the window table held no rows before this run wrote it, so every row is
-- the run's own, and no pair held back for its activity (missing, or its schedule or
-- milestone unusable) has one: both statements read the activities from the same
-- pg_temp.run_activity. Only a reason that comes from the patient journey's row, which each
-- statement reads afresh, can have a row to mark: a first load looks a few pairs up, not every
-- pair held back (353,000 lookups, 0.7 s, at 100,000 journeys).
CREATE OR REPLACE FUNCTION pipeline._mark_held_back_windows(p_scoped boolean, p_table_was_empty boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
-- Each pair looks up its window row by the key: the planner, expecting a third of them to have
-- one, hashed the whole window table instead (2.5 s of a full load at 100,000 journeys, where
-- the 400,000 lookups cost 0.5 s); the pairs held back are always far fewer than the window
-- rows, so the lookups are never the worse plan by much.
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    -- plpgsql_check cannot know the temp tables of the steps before: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_held_back (patient_journey_id bigint, activity_id bigint, '
            'held_back pipeline.held_back_reason)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_held_back_change (change integer, held_back pipeline.held_back_reason, '
            'schedule_id bigint, patient_journey_id bigint, activity_id bigint, milestone_slug text)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_window (patient_journey_id bigint, activity_id bigint)';
    IF p_scoped THEN
        CREATE TEMP TABLE run_to_mark ON COMMIT DROP AS
        SELECT x.patient_journey_id, x.activity_id FROM pg_temp.run_held_back AS x;
    ELSIF p_table_was_empty THEN
        CREATE TEMP TABLE run_to_mark ON COMMIT DROP AS
        SELECT h.patient_journey_id, h.activity_id FROM pipeline.held_back_pair AS h
        WHERE h.held_back NOT IN ('missing activity', 'missing schedule', 'slug does not parse',
                                  'milestone date column unusable');
    ELSE
        -- joined by hashing: a full run that changed much wrote millions of rows
        PERFORM set_config('enable_hashjoin', 'on', true);
        CREATE TEMP TABLE run_to_mark ON COMMIT DROP AS
        SELECT c.patient_journey_id, c.activity_id FROM pg_temp.run_held_back_change AS c
        WHERE c.change = 1
        UNION ALL
        SELECT h.patient_journey_id, h.activity_id
        FROM pipeline.held_back_pair AS h
        JOIN pg_temp.run_window AS w
            ON w.patient_journey_id = h.patient_journey_id AND w.activity_id = h.activity_id;
        PERFORM set_config('enable_hashjoin', 'off', true);
    END IF;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_to_mark (patient_journey_id bigint, activity_id bigint)';
    ANALYZE pg_temp.run_to_mark;
    UPDATE pipeline.patient_journey_schedule_window AS w
    SET held_back = true, retired_at = NULL
    FROM pg_temp.run_to_mark AS h
    WHERE w.patient_journey_id = h.patient_journey_id AND w.activity_id = h.activity_id
      AND (NOT w.held_back OR w.retired_at IS NOT NULL);
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._mark_held_back_windows(boolean, boolean) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._mark_held_back_windows(boolean, boolean) IS
    'Run step: marks held_back (and un-retires) the window rows of the pairs held back now that can need it '
    '(held back anew, or written by this run; an incremental run''s: its scope''s), after the windows are written.';
