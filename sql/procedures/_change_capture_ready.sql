-- Whether every watched table has its change-capture triggers, enabled as migrate left them.
-- If not, changes may have bypassed the queue and only a full run is safe; migrate repairs it.
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
           -- no LIKE: its escape would be a backslash, which standard_conforming_strings changes
           AND starts_with(tg.tgname::text, 'pipeline_capture_')
           -- 'A' (always) as migrate leaves them; a trigger disabled and enabled again since
           -- comes back as 'O' and may have missed changes. Where we do not own the table,
           -- migrate could only make them 'O'.
           AND (tg.tgenabled = 'A'
                OR (tg.tgenabled = 'O'
                    AND NOT pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class AS c
                                         WHERE c.oid = tg.tgrelid), 'USAGE'))))
        = CASE WHEN w.kind = 'full' THEN 2 ELSE 4 END)
    FROM pipeline._change_capture_tables() AS w);
END;
$$;

COMMENT ON FUNCTION pipeline._change_capture_ready() IS
    'True when all change-capture triggers exist and are enabled, so the queue holds every change.';
