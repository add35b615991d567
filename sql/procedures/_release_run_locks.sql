-- Release every run lock this session holds (a run's own lock, and _execute_run's execution
-- lock), all holds of each, for a session lock counts its holds: at the end of each run, and
-- at the start of the next for locks an error at a COMMIT left behind. The session sees its own
-- locks' keys in pg_locks, so this needs no rights. Bounded: a session that took a lock by hand
-- more often than any run does is told so, rather than looped for.
CREATE OR REPLACE FUNCTION pipeline._release_run_locks()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_lock record;
    v_most constant integer := 100;
    v_held boolean;
BEGIN
    -- One release of every lock held, then look again: pg_locks is read once a round (about
    -- 0.3 ms each), not before and after each release, and a lock held once costs two rounds.
    FOR i IN 1 .. v_most + 1 LOOP
        v_held := false;
        FOR v_lock IN
            SELECT DISTINCT l.classid::bigint::integer AS key1,
                   -- objid is unsigned; the key was a signed int4
                   (l.objid::bigint - CASE WHEN l.objid::bigint >= 2147483648 THEN 4294967296 ELSE 0 END)::integer AS key2
            FROM pg_catalog.pg_locks AS l
            WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted AND l.objsubid = 2
              AND l.mode = 'ExclusiveLock'
              AND l.classid IN (SELECT k.key1::bigint::oid
                                FROM pipeline._advisory_lock_classes() AS c,
                                     LATERAL (VALUES (c.run_lock), (c.execution_lock)) AS k (key1))
        LOOP
            v_held := true;
            IF i > v_most THEN
                RAISE EXCEPTION 'this session holds a pipeline run lock (advisory lock %, %) more than % times',
                                v_lock.key1, v_lock.key2, v_most
                    USING ERRCODE = 'program_limit_exceeded',
                          HINT = 'Something in this session took it by hand: SELECT pg_advisory_unlock_all(); or close the session.';
            END IF;
            PERFORM pg_advisory_unlock(v_lock.key1, v_lock.key2);
        END LOOP;
        EXIT WHEN NOT v_held;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._release_run_locks() IS
    'Releases every hold this session has of pipeline run locks (at most 100 of each, else SQLSTATE 54000).';
