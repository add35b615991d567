-- Take the queued changes into pg_temp.run_change and decide how much this run recomputes:
-- full (asked for, queued, changes may have bypassed the queue, or the last succeeded full
-- run is older than settings.full_run_every), incremental, or noop. A queued kind this run
-- does not know counts as full: the queue has no CHECK on kind (it cost every application
-- statement), and no change may be dropped for its kind.
-- The DELETE returns exactly the rows it removes, so a change committed meanwhile stays
-- queued for the next run; if the run fails, the rollback puts the drained rows back.
-- A full run records the change-capture state it starts from (before it reads any source
-- row); the record is part of the run's transaction, so only a succeeded full run keeps it.
CREATE OR REPLACE FUNCTION pipeline._drain_changes(p_full boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_queued boolean;
    v_unknown_kind boolean := false;
BEGIN
    -- Nothing queued, as most runs find: no temporary table to create and drop (a tenth of a
    -- no-op run). A change committed after this look waits in the queue for the next run. The
    -- statements that read run_change are reached only once it exists (each is planned then).
    v_queued := EXISTS (SELECT FROM pipeline.change_queue);
    IF v_queued THEN
        CREATE TEMP TABLE run_change (kind text, keys bigint[]) ON COMMIT DROP;
        -- plpgsql_check cannot run the CREATE above: the pragma tells it the table (a no-op when run)
        PERFORM 'PRAGMA:TABLE: pg_temp.run_change (kind text, keys bigint[])';
        WITH drained AS (
            DELETE FROM pipeline.change_queue RETURNING kind, keys
        )
        INSERT INTO pg_temp.run_change SELECT d.kind, d.keys FROM drained AS d;
        v_queued := FOUND;
        v_unknown_kind := EXISTS (SELECT FROM pg_temp.run_change AS c
                                  WHERE c.kind NOT IN ('patient_journey', 'journey', 'activity', 'schedule'));
    END IF;

    IF p_full
       OR NOT pipeline._change_capture_ready()
       OR v_unknown_kind
       OR EXISTS (SELECT FROM pipeline.settings AS s
                  WHERE s.full_run_every IS NOT NULL
                    AND coalesce((SELECT max(r.started_at) FROM pipeline.pipeline_runs AS r
                                  WHERE r.status = 'succeeded' AND r.mode = 'full'),
                                 -- that run purged (retention shorter than full_run_every)
                                 (SELECT min(c.recorded_at) FROM pipeline.change_capture_state AS c),
                                 '-infinity') < now() - s.full_run_every) THEN
        DELETE FROM pipeline.change_capture_state;
        INSERT INTO pipeline.change_capture_state (table_name, table_oid, triggers, columns, subscribed)
        SELECT * FROM pipeline._capture_state();
        RETURN 'full';
    ELSIF NOT v_queued THEN
        RETURN 'noop';
    END IF;
    RETURN 'incremental';
END;
$$;

COMMENT ON FUNCTION pipeline._drain_changes(boolean) IS
    'Run step 0: drains pipeline.change_queue into run_change and returns the mode: full, incremental or noop '
    '(a full run records the change-capture state it starts from).';
