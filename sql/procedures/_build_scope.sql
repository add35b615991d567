-- What an incremental run recomputes: every pair of the patient journeys in pg_temp.run_scope
-- (touched directly, or on a journey whose prescribed activities changed) and every pair of
-- the activities in pg_temp.run_scope_activity (changed, or on a changed schedule).
-- Returns how many patient journeys and activities the scope holds.
CREATE OR REPLACE FUNCTION pipeline._build_scope()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_activities bigint;
    v_patient_journeys bigint;
BEGIN
    -- plpgsql_check cannot know the temp tables of the steps before and cannot run the CREATEs
    -- below: the pragmas tell it those tables (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_change (kind text, keys bigint[])';
    CREATE TEMP TABLE run_scope (patient_journey_id bigint PRIMARY KEY) ON COMMIT DROP;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    CREATE TEMP TABLE run_scope_activity (activity_id bigint PRIMARY KEY) ON COMMIT DROP;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope_activity (activity_id bigint)';

    CREATE TEMP TABLE run_touched ON COMMIT DROP AS
    SELECT DISTINCT c.kind, k.key
    FROM pg_temp.run_change AS c, unnest(c.keys) AS k (key)
    WHERE k.key IS NOT NULL;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_touched (kind text, key bigint)';

    INSERT INTO pg_temp.run_scope_activity
    SELECT t.key FROM pg_temp.run_touched AS t WHERE t.kind = 'activity'
    UNION
    SELECT a.id FROM public.activity AS a
    WHERE a.schedule_id IN (SELECT t.key FROM pg_temp.run_touched AS t WHERE t.kind = 'schedule')
      AND a.id IS NOT NULL;
    GET DIAGNOSTICS v_activities = ROW_COUNT;

    INSERT INTO pg_temp.run_scope
    SELECT t.key FROM pg_temp.run_touched AS t WHERE t.kind = 'patient_journey'
    UNION
    SELECT pj.id FROM public.patient_journey AS pj
    WHERE pj.journey_id IN (SELECT t.key FROM pg_temp.run_touched AS t WHERE t.kind = 'journey')
      AND pj.id IS NOT NULL;
    GET DIAGNOSTICS v_patient_journeys = ROW_COUNT;

    ANALYZE pg_temp.run_scope;
    ANALYZE pg_temp.run_scope_activity;
    -- The scope is small by design: let the planner use the source tables' indexes rather
    -- than scan them, as it would under the default cost of a random page read.
    PERFORM set_config('random_page_cost', '1.1', true);
    RETURN v_activities + v_patient_journeys;
END;
$$;

COMMENT ON FUNCTION pipeline._build_scope() IS
    'Incremental runs: the patient journeys (run_scope) and activities (run_scope_activity) whose pairs the queued changes may have changed.';
