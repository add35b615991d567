-- What change capture's trust rests on, per watched table, as catalog row versions: the table's
-- oid, each capture trigger's oid, pg_trigger xmin and enabled state, each column's pg_attribute
-- xmin, and whether a subscription replicates into it. ALTER TABLE ... ENABLE / DISABLE
-- TRIGGER, CREATE OR REPLACE TRIGGER, DROP / CREATE and column DDL (a type change rewrites the
-- values without firing any trigger) each write a new row version, hence a new xmin: whoever
-- did it, and however briefly. A full run records this (pipeline.change_capture_state); a
-- routine run that finds anything else runs full. Names are compared exactly, not by pattern.
CREATE OR REPLACE FUNCTION pipeline._capture_state()
RETURNS TABLE (table_name text, table_oid oid, triggers text, columns text, subscribed boolean)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT w.table_name,
           c.oid,
           (SELECT string_agg(format('%s %s %s %s', tg.tgname, tg.oid, tg.xmin, tg.tgenabled), ',' ORDER BY tg.tgname)
            FROM pg_trigger AS tg
            WHERE tg.tgrelid = c.oid
              AND (left(tg.tgname, 17) = 'pipeline_capture_'
                   OR tg.tgfoid IN ('pipeline._capture_changes()'::regprocedure,
                                    'pipeline._capture_row_change()'::regprocedure))),
           (SELECT string_agg(format('%s:%s', a.attnum, a.xmin), ',' ORDER BY a.attnum)
            FROM pg_attribute AS a
            WHERE a.attrelid = c.oid AND a.attnum > 0),
           EXISTS (SELECT FROM pg_subscription_rel AS sr WHERE sr.srrelid = c.oid)
    FROM pipeline._change_capture_tables() AS w
    LEFT JOIN pg_class AS c ON c.oid = to_regclass(w.table_name);
END;
$$;

COMMENT ON FUNCTION pipeline._capture_state() IS
    'Each watched table''s oid, capture triggers and columns as catalog row versions, and whether it is subscribed.';
