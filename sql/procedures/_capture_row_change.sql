-- Row-level trigger on the source tables, for writers that statement-level triggers never see:
-- the logical replication apply worker fires row triggers only (enabled REPLICA or ALWAYS).
-- migrate enables it REPLICA, and its WHEN clause holds only in session_replication_role =
-- replica, so the application's ordinary writes never call it. Queues the key of the row
-- (old and new for an update), as pipeline._capture_changes does for a statement.
-- TG_ARGV[0] = kind of key, TG_ARGV[1] = column holding it; kind full queues a full run.
-- SECURITY DEFINER: the apply worker's role needs no rights on the pipeline schema.
CREATE OR REPLACE FUNCTION pipeline._capture_row_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_old jsonb;
    v_new jsonb;
BEGIN
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            v_old := to_jsonb(OLD);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            v_new := to_jsonb(NEW);
        END IF;
        IF TG_ARGV[0] = 'full' OR NOT coalesce(v_new, v_old) ? TG_ARGV[1] THEN
            -- kind full, or the key column is gone (renamed?): no key to queue
            INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        ELSIF (v_old ->> TG_ARGV[1]) IS NOT NULL OR (v_new ->> TG_ARGV[1]) IS NOT NULL THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            VALUES (TG_ARGV[0], array_remove(ARRAY[(v_old ->> TG_ARGV[1])::bigint,
                                                  (v_new ->> TG_ARGV[1])::bigint], NULL));
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- Never stop the write (replication would stall on it): ask for a full run instead.
        INSERT INTO pipeline.change_queue (kind) VALUES ('full');
    END;
    RETURN NULL;
END;
$$;

-- Fired by triggers only; nobody needs to attach it to tables of their own.
REVOKE ALL ON FUNCTION pipeline._capture_row_change() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._capture_row_change() IS
    'Trigger: queues the key of each row written in session_replication_role = replica (logical replication).';
