-- Whether the change queue can be trusted to hold every change since the latest full run: no
-- capture problem now (pipeline._change_capture_problems: every trigger there, as migrate
-- installs it, enabled; replica writes captured where a subscription replicates), and nothing
-- of it changed since that run recorded it (pipeline._capture_state: a trigger disabled and
-- enabled again since, a trigger replaced, a table re-created, a column altered, a subscription
-- added or dropped). If not, only a full run is safe; it records the state it found.
CREATE OR REPLACE FUNCTION pipeline._change_capture_ready()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN NOT EXISTS (SELECT FROM pipeline._change_capture_problems())
       AND NOT EXISTS (
           -- read once: each read of the catalog costs a fifth of a no-op run's time
           WITH current_state AS MATERIALIZED (SELECT * FROM pipeline._capture_state())
           (SELECT * FROM current_state
            EXCEPT
            SELECT s.table_name, s.table_oid, s.triggers, s.columns, s.subscribed
            FROM pipeline.change_capture_state AS s)
           UNION ALL
           (SELECT s.table_name, s.table_oid, s.triggers, s.columns, s.subscribed
            FROM pipeline.change_capture_state AS s
            EXCEPT
            SELECT * FROM current_state));
END;
$$;

COMMENT ON FUNCTION pipeline._change_capture_ready() IS
    'True when change capture works and nothing it rests on changed since the latest full run recorded it.';
