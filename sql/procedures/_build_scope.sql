-- The patient journeys an incremental run recomputes (pg_temp.run_scope): those touched
-- directly, those on a journey whose activities changed, and those with pairs on a changed
-- activity or on an activity of a changed schedule.
CREATE OR REPLACE FUNCTION pipeline._build_scope()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_scope bigint;
BEGIN
    CREATE TEMP TABLE run_scope (patient_journey_id bigint PRIMARY KEY) ON COMMIT DROP;
    WITH touched AS (
        SELECT c.kind, k.key
        FROM pg_temp.run_change AS c, unnest(c.keys) AS k (key)
        WHERE k.key IS NOT NULL
    ),
    changed_activity AS (
        SELECT t.key AS activity_id FROM touched AS t WHERE t.kind = 'activity'
        UNION
        SELECT a.id FROM public.activity AS a
        WHERE a.schedule_id IN (SELECT t.key FROM touched AS t WHERE t.kind = 'schedule')
    ),
    changed_journey AS (
        SELECT t.key AS journey_id FROM touched AS t WHERE t.kind = 'journey'
        UNION
        SELECT ja.journey_id FROM public.journey_activity AS ja
        WHERE ja.activity_id IN (SELECT ca.activity_id FROM changed_activity AS ca)
    )
    INSERT INTO pg_temp.run_scope
    SELECT t.key FROM touched AS t WHERE t.kind = 'patient_journey'
    UNION
    SELECT pj.id FROM public.patient_journey AS pj
    WHERE pj.journey_id IN (SELECT cj.journey_id FROM changed_journey AS cj) AND pj.id IS NOT NULL
    UNION
    SELECT sr.patient_journey_id FROM public.survey_result AS sr
    WHERE sr.activity_id IN (SELECT ca.activity_id FROM changed_activity AS ca)
      AND sr.patient_journey_id IS NOT NULL;
    GET DIAGNOSTICS v_scope = ROW_COUNT;
    ANALYZE pg_temp.run_scope;
    RETURN v_scope;
END;
$$;

COMMENT ON FUNCTION pipeline._build_scope() IS
    'Incremental runs: the patient journeys whose pairs the queued changes may have changed (temp table run_scope).';
