-- Whether an incremental run's scope reaches so much of the source that a full run is cheaper:
-- more than 40% of the patient journeys or of the activities, in a database of at least 10,000
-- patient journeys (below that either kind of run is cheap). Measured at 100,000 patient
-- journeys (README, "What a run does"): an incremental run costs about 0.6 s per 1% of the
-- journeys it reaches, through the indexes, while a full run costs 20 to 32 s whatever it
-- reaches; they meet near 50%, and an application statement that rewrites every row (values
-- unchanged) made the incremental run twice as slow as a full one. The totals are the
-- planner's estimates (pg_class.reltuples, kept by ANALYZE and autovacuum), counted only for a
-- table never analysed.
CREATE OR REPLACE FUNCTION pipeline._scope_is_large()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    c_share constant double precision := 0.4;
    c_smallest constant double precision := 10000;
    v_journeys double precision;
    v_activities double precision;
BEGIN
    -- plpgsql_check cannot know the temp tables of the steps before: the pragmas tell it them
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope_activity (activity_id bigint)';
    SELECT c.reltuples INTO v_journeys FROM pg_class AS c WHERE c.oid = 'public.patient_journey'::regclass;
    IF v_journeys < 0 THEN
        SELECT count(*) INTO v_journeys FROM public.patient_journey;
    END IF;
    IF v_journeys < c_smallest THEN
        RETURN false;
    END IF;
    SELECT c.reltuples INTO v_activities FROM pg_class AS c WHERE c.oid = 'public.activity'::regclass;
    IF v_activities < 0 THEN
        SELECT count(*) INTO v_activities FROM public.activity;
    END IF;
    RETURN (SELECT count(*) FROM pg_temp.run_scope) > c_share * v_journeys
        OR (SELECT count(*) FROM pg_temp.run_scope_activity) > c_share * greatest(v_activities, 1);
END;
$$;

COMMENT ON FUNCTION pipeline._scope_is_large() IS
    'Incremental runs: true when the scope reaches over 40% of the patient journeys or activities of a database '
    'of 10,000 or more patient journeys, where a full run is cheaper.';
