-- Which tables change capture watches, the kind of key each queues and the column holding it.
CREATE OR REPLACE FUNCTION pipeline._change_capture_tables()
RETURNS TABLE (table_name text, kind text, key_column text)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        ('public.patient_journey', 'patient_journey', 'id'),
        ('public.survey_result', 'patient_journey', 'patient_journey_id'),
        ('public.journey_activity', 'journey', 'journey_id'),
        ('public.activity', 'activity', 'id'),
        ('public.schedule', 'schedule', 'id'),
        ('pipeline.milestone', 'full', NULL),
        ('pipeline.milestone_alias', 'full', NULL),
        -- report_time_zone dates every survey result: a change of settings asks for a full run
        ('pipeline.settings', 'full', NULL)
$$;

COMMENT ON FUNCTION pipeline._change_capture_tables() IS
    'The tables whose changes the run must see, with the key kind and column each one queues.';
