-- Take the queued changes into pg_temp.run_change and decide how much this run recomputes:
-- full (asked for, queued, or changes may have bypassed the queue), incremental, or noop.
-- The DELETE returns exactly the rows it removes, so a change committed meanwhile stays
-- queued for the next run; if the run fails, the rollback puts the drained rows back.
CREATE OR REPLACE FUNCTION pipeline._drain_changes(p_full boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    CREATE TEMP TABLE run_change (kind text, keys bigint[]) ON COMMIT DROP;
    -- plpgsql_check cannot run the CREATE above: the pragma tells it the table (a no-op when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_change (kind text, keys bigint[])';
    WITH drained AS (
        DELETE FROM pipeline.change_queue RETURNING kind, keys
    )
    INSERT INTO pg_temp.run_change SELECT d.kind, d.keys FROM drained AS d;

    IF p_full
       OR NOT pipeline._change_capture_ready()
       OR EXISTS (SELECT FROM pg_temp.run_change AS c WHERE c.kind = 'full') THEN
        RETURN 'full';
    ELSIF NOT EXISTS (SELECT FROM pg_temp.run_change) THEN
        RETURN 'noop';
    END IF;
    RETURN 'incremental';
END;
$$;

COMMENT ON FUNCTION pipeline._drain_changes(boolean) IS
    'Run step 0: drains pipeline.change_queue into run_change and returns the mode: full, incremental or noop.';
