-- The source columns a run reads (and change capture queues), each with the kind of built-in
-- type it must have. A column of another type could carry a cast, or a cast to json, written by
-- the tables' owner: converting it would run that owner's function with pipeline_owner's
-- rights. The run refuses such a column (_check_source_tables) and change capture queues a
-- full run instead of reading it (_capture_changes, _capture_row_change).
CREATE OR REPLACE FUNCTION pipeline._source_columns()
RETURNS TABLE (table_name text, column_name text, kind text)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        ('public.patient_journey', 'id', 'integer'),
        ('public.patient_journey', 'patient_id', 'integer'),
        ('public.patient_journey', 'journey_id', 'integer'),
        ('public.journey_activity', 'journey_id', 'integer'),
        ('public.journey_activity', 'activity_id', 'integer'),
        ('public.activity', 'id', 'integer'),
        ('public.activity', 'content_slug', 'text'),
        ('public.activity', 'schedule_id', 'integer'),
        ('public.schedule', 'id', 'integer'),
        ('public.schedule', 'slug', 'text'),
        ('public.survey_result', 'patient_journey_id', 'integer'),
        ('public.survey_result', 'activity_id', 'integer'),
        ('public.survey_result', 'start_time', 'timestamptz'),
        ('public.survey_result', 'end_time', 'timestamptz')
$$;

COMMENT ON FUNCTION pipeline._source_columns() IS
    'The source columns a run reads, with the kind of built-in type (integer, text or timestamptz) each must have.';
