-- Whether every watched table has its change-capture triggers, enabled. If not, changes may
-- have bypassed the queue and only a full run is safe.
CREATE OR REPLACE FUNCTION pipeline._change_capture_ready()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN (SELECT bool_and(
        (SELECT count(*)
         FROM pg_catalog.pg_trigger AS tg
         WHERE tg.tgrelid = to_regclass(w.table_name)
           AND tg.tgname LIKE 'pipeline\_capture\_%'
           AND tg.tgenabled <> 'D')
        = CASE WHEN w.kind = 'full' THEN 2 ELSE 4 END)
    FROM pipeline._change_capture_tables() AS w);
END;
$$;

COMMENT ON FUNCTION pipeline._change_capture_ready() IS
    'True when all change-capture triggers exist and are enabled, so the queue holds every change.';
