-- Whether writes made in session_replication_role = replica (the logical replication apply
-- worker, a replica-mode session) fire capture triggers on this table: the row-level one
-- enabled REPLICA or ALWAYS, and the TRUNCATE one enabled ALWAYS. Only the table's owner can
-- enable them so, hence a separate check: without it replica-mode writes go unseen, which
-- PostgreSQL lets us detect only where a subscription replicates into the table.
CREATE OR REPLACE FUNCTION pipeline._replica_writes_captured(p_table text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN (SELECT count(*) = 2
            FROM pipeline._capture_triggers() AS t
            WHERE t.table_name = p_table
              AND t.as_installed
              AND ((t.purpose = 'replica' AND t.enabled IN ('R', 'A'))
                   OR (t.purpose = 'truncate' AND t.enabled = 'A')));
END;
$$;

COMMENT ON FUNCTION pipeline._replica_writes_captured(text) IS
    'True when writes in session_replication_role = replica (logical replication) fire this table''s capture triggers.';
