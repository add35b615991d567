-- Retire the window rows of pg_temp.run_unprescribed (pairs their patient journey's journey
-- does not prescribe, as _retire_windows found them) that no copy of their patient journey
-- prescribes, no survey result has and this run did not record held back: the pair has left
-- the source. Returns how many.
-- The few thousand rows are looked up one by one, through the indexes: planned freely, the
-- planner hashed all of survey_result for them (1.1 s at 100,000 journeys; the lookups take
-- 50 ms), expecting nearly every row to find a result, as nearly every one does.
CREATE OR REPLACE FUNCTION pipeline._retire_unprescribed()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    v_retired bigint;
BEGIN
    -- plpgsql_check cannot know the temp table of the step that calls it: the pragma tells it (a no-op when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_unprescribed (patient_journey_id bigint, activity_id bigint)';
    UPDATE pipeline.patient_journey_schedule_window AS w
    SET retired_at = now()
    FROM pg_temp.run_unprescribed AS u
    WHERE w.patient_journey_id = u.patient_journey_id AND w.activity_id = u.activity_id
      -- another copy of a duplicated patient journey id may prescribe it
      AND NOT EXISTS (SELECT FROM public.patient_journey AS pj
                      JOIN public.journey_activity AS ja ON ja.journey_id = pj.journey_id
                      WHERE pj.id = u.patient_journey_id AND ja.activity_id = u.activity_id)
      AND NOT EXISTS (SELECT FROM public.survey_result AS r
                      WHERE r.patient_journey_id = u.patient_journey_id AND r.activity_id = u.activity_id)
      -- nor a pair this run recorded held back: it was in the source then, and its row stays
      -- marked and unretired, as every run leaves the rows of held_back_pair (a full run looks
      -- only some of them up again: _mark_held_back_windows). Should the application have
      -- removed it since, the next run, which the removal queued, releases and retires it.
      AND NOT EXISTS (SELECT FROM pipeline.held_back_pair AS h
                      WHERE h.patient_journey_id = u.patient_journey_id AND h.activity_id = u.activity_id);
    GET DIAGNOSTICS v_retired = ROW_COUNT;
    RETURN v_retired;
END;
$$;

-- A step of the run, not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._retire_unprescribed() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._retire_unprescribed() IS
    'Run step 5, for _retire_windows: retires the rows of pg_temp.run_unprescribed whose pair the source no '
    'longer has; returns how many.';
