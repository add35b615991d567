-- Release, in this session, a run's own lock and any execution lock (_execute_run's) this
-- session still holds: every hold of each, for a session lock counts its holds. Bounded: a
-- session that took a lock by hand more often than any run does is told so, rather than looped.
CREATE OR REPLACE FUNCTION pipeline._release_run_lock(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_lock record;
    v_most constant integer := 100;
    v_released boolean;
BEGIN
    FOR v_lock IN
        SELECT k.key1, k.key2 FROM pipeline._run_lock_key(p_run_id) AS k
        UNION
        -- this session's own locks: it sees their keys in pg_locks (objid is unsigned)
        SELECT l.classid::bigint::integer, (l.objid::bigint - CASE WHEN l.objid::bigint >= 2147483648
                                                                  THEN 4294967296 ELSE 0 END)::integer
        FROM pg_catalog.pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid = 2
          AND l.classid = 485739403::oid  -- key1 of pipeline._execution_lock_key
    LOOP
        v_released := false;
        FOR i IN 1 .. v_most LOOP
            IF NOT EXISTS (SELECT FROM pipeline._advisory_holders(v_lock.key1, v_lock.key2) AS h
                           WHERE h.pid = pg_backend_pid() AND h.mode = 'ExclusiveLock') THEN
                v_released := true;
                EXIT;
            END IF;
            PERFORM pg_advisory_unlock(v_lock.key1, v_lock.key2);
        END LOOP;
        IF NOT v_released THEN
            RAISE EXCEPTION 'this session holds a lock of pipeline run % (advisory lock %, %) more than % times',
                            p_run_id, v_lock.key1, v_lock.key2, v_most
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Something in this session took it by hand: SELECT pg_advisory_unlock_all(); or close the session.';
        END IF;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._release_run_lock(bigint) IS
    'Releases every hold this session has of the run''s own lock and of execution locks (at most 100 each, '
    'else SQLSTATE 54000).';
