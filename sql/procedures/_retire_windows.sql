-- Mark the window rows whose pair has left the source: retired_at = now() (the row stays, as
-- it always has; adherence no longer counts it). A pair that comes back is un-retired by the
-- write (pg_temp.run_window's retired_at is NULL), and a pair now held back is still in the
-- source, so it is not retired. A full run looks at every row; an incremental one only at the
-- rows of the patient journeys in its scope, which every change that can remove a pair puts
-- there: a patient journey or survey result written (its patient journey) or a journey's
-- activities changed (every patient journey on it). An activity or schedule removed leaves
-- its pairs in the source, held back. Returns how many rows it retired.
CREATE OR REPLACE FUNCTION pipeline._retire_windows(p_scoped boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_retired bigint;
BEGIN
    -- plpgsql_check cannot know the temp tables of the steps before: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    -- The source's pairs, as _prepare_candidates forms them: prescribed by the patient journey's
    -- journey, or with a survey result. Shaped for millions of rows: each row's patient journey
    -- is joined (a hash of the patient journeys) and its journey's activities looked up (a hash of
    -- journey_activity), which leaves the few rows that some copy of their patient journey does not
    -- prescribe; only those are looked up again, and in survey_result, through the indexes. Two
    -- statements find them: run_scope exists in incremental runs only.
    -- The rows to look at again go into an analysed temp table first, for
    -- pipeline._retire_unprescribed to look up one by one: made by CREATE TABLE AS, which, unlike
    -- INSERT, lets parallel workers read the window table (a full run's 3.7 million rows at
    -- 100,000 journeys: 1.2 s by INSERT, 0.78 s so).
    PERFORM 'PRAGMA:TABLE: pg_temp.run_unprescribed (patient_journey_id bigint, activity_id bigint)';
    IF p_scoped THEN
        -- the scope's patient journeys looked up first, by their ids: joined to the window
        -- rows, the planner read the patient journeys' index from its start up to the scope's
        -- last id (most of it, for a scope of a thousand journeys)
        CREATE TEMP TABLE run_unprescribed ON COMMIT DROP AS
        SELECT x.patient_journey_id, x.activity_id
        FROM (SELECT s.patient_journey_id, pj.journey_id
              FROM pg_temp.run_scope AS s
              LEFT JOIN public.patient_journey AS pj ON pj.id = s.patient_journey_id
              OFFSET 0) AS sj
        JOIN pipeline.patient_journey_schedule_window AS x ON x.patient_journey_id = sj.patient_journey_id
        WHERE x.retired_at IS NULL
          AND NOT EXISTS (SELECT FROM public.journey_activity AS ja
                          WHERE ja.journey_id = sj.journey_id AND ja.activity_id = x.activity_id);
    ELSE
        -- A full run leaves out the rows of the survey pairs that no journey prescribes and that
        -- it found with results (pipeline.run_survey_pair, of its unlogged tables), rather than
        -- look their results up again (12,000 rows, 0.3 s, at 100,000 journeys). A result
        -- deleted since queued its patient journey, whose next run retires the pair; a pair is
        -- retired only by what this statement and _retire_unprescribed read now.
        -- EXECUTE of a formatted string: the table exists only in a full run, which a static
        -- check (plpgsql_check plans a constant string) cannot know.
        EXECUTE format($sql$
        CREATE TEMP TABLE run_unprescribed ON COMMIT DROP AS
        SELECT x.patient_journey_id, x.activity_id
        FROM pipeline.patient_journey_schedule_window AS x
        LEFT JOIN public.patient_journey AS pj ON pj.id = x.patient_journey_id
        WHERE x.retired_at IS NULL
          AND NOT EXISTS (SELECT FROM public.journey_activity AS ja
                          WHERE ja.journey_id = pj.journey_id AND ja.activity_id = x.activity_id)
          AND NOT EXISTS (SELECT FROM %I.run_survey_pair AS p
                          WHERE p.patient_journey_id = x.patient_journey_id AND p.activity_id = x.activity_id)
        $sql$, 'pipeline');
    END IF;
    ANALYZE pg_temp.run_unprescribed;
    v_retired := pipeline._retire_unprescribed();
    RETURN v_retired;
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._retire_windows(boolean) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._retire_windows(boolean) IS
    'Run step 5: sets retired_at on the window rows (all, or the scope''s patient journeys'') whose pair the '
    'source no longer has; returns how many.';
