-- The milestones whose date column exists in public.patient_journey with a date-like type.
CREATE OR REPLACE FUNCTION pipeline._milestone_date_columns()
RETURNS TABLE (milestone_slug text, date_column text, usable boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
    SELECT m.milestone_slug,
           m.date_column,
           m.date_column IS NULL OR EXISTS (
               SELECT
               FROM pg_catalog.pg_attribute AS att
               WHERE att.attrelid = to_regclass('public.patient_journey')
                 AND att.attname = m.date_column
                 AND NOT att.attisdropped
                 AND att.atttypid IN ('date'::regtype, 'timestamp'::regtype)  -- timestamptz: its date depends on TimeZone
           )
    FROM pipeline.milestone AS m
$$;

COMMENT ON FUNCTION pipeline._milestone_date_columns() IS
    'Each milestone with its date column and whether that column exists in public.patient_journey as date or timestamp (not timestamptz).';
