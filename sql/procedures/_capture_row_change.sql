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
-- Not pipeline: it runs on every application write, so no function a role may have put in
-- schema pipeline can stand in for the catalog's here; what it names of ours is qualified.
SET search_path = pg_catalog, pg_temp
AS $$
-- A column of the source table may have any name (tg_argv, v_keys): where one matches a
-- variable of this function, the variable is meant, not the column.
#variable_conflict use_variable
DECLARE
    v_old bigint;
    v_new bigint;
BEGIN
    BEGIN
        -- Only the key column is read, and only when its type is the catalog's integer: a row
        -- converted whole (to_jsonb) or a key of another type could run a cast of the tables'
        -- owner with the pipeline owner's rights. Otherwise (or kind full) a full run is asked for.
        IF TG_ARGV[0] = 'full' OR NOT pipeline._column_has_kind(TG_RELID, TG_ARGV[1], 'integer') THEN
            INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        ELSE
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                EXECUTE format('SELECT ($1).%I', TG_ARGV[1]) INTO v_old USING OLD;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                EXECUTE format('SELECT ($1).%I', TG_ARGV[1]) INTO v_new USING NEW;
            END IF;
            IF v_old IS NOT NULL OR v_new IS NOT NULL THEN
                INSERT INTO pipeline.change_queue (kind, keys)
                VALUES (TG_ARGV[0], array_remove(ARRAY[v_old, v_new], NULL));
            END IF;
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
