-- Release a run's own lock in this session: every hold of it, for a session lock counts its
-- holds. Bounded: a session that took the lock by hand more often than any run does is told so,
-- rather than looping.
CREATE OR REPLACE FUNCTION pipeline._release_run_lock(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_key record;
    v_most constant integer := 100;
BEGIN
    SELECT * INTO v_key FROM pipeline._run_lock_key(p_run_id);
    FOR i IN 1 .. v_most LOOP
        IF NOT EXISTS (SELECT FROM pipeline._run_locks(p_run_id) AS l
                       WHERE l.pid = pg_backend_pid() AND l.mode = 'ExclusiveLock') THEN
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(v_key.key1, v_key.key2);
    END LOOP;
    RAISE EXCEPTION 'this session holds the lock of pipeline run % more than % times', p_run_id, v_most
        USING ERRCODE = 'program_limit_exceeded',
              HINT = 'Something in this session took it by hand: SELECT pg_advisory_unlock_all(); or close the session.';
END;
$$;

COMMENT ON FUNCTION pipeline._release_run_lock(bigint) IS
    'Releases every hold this session has of the run''s own lock (at most 100, else SQLSTATE 54000).';
