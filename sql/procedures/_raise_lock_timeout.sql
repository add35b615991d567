-- A run's lock wait on p_relation (asked in p_mode, e.g. 'ACCESS SHARE') ran out of lock_timeout:
-- fail naming what stood in its way (pipeline._lock_holders) on the table or a table under it
-- (LOCK TABLE takes each child's lock as well). Called only once the wait has failed: a run
-- that gets its lock never compiles it.
CREATE OR REPLACE FUNCTION pipeline._raise_lock_timeout(p_relation regclass, p_mode text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_locked oid[];
BEGIN
    WITH RECURSIVE locked (relation) AS (
        SELECT p_relation::oid
        UNION
        SELECT i.inhrelid FROM locked AS k JOIN pg_catalog.pg_inherits AS i ON i.inhparent = k.relation
    )
    SELECT array_agg(k.relation) INTO v_locked FROM locked AS k;
    RAISE EXCEPTION 'lock timeout: waited % for % on %: %', current_setting('lock_timeout'), upper(p_mode),
                    p_relation,
                    coalesce(pipeline._lock_holders(v_locked, p_mode),
                             'no session holds or awaits a conflicting lock on it or under it now '
                             '(the one in the way has just ended)')
        USING ERRCODE = 'lock_not_available',
              HINT = 'End that transaction (pg_terminate_backend(pid), or ROLLBACK PREPARED for a prepared one); '
                     'the next run then proceeds.';
END;
$$;

COMMENT ON FUNCTION pipeline._raise_lock_timeout(regclass, text) IS
    'Fails a lock wait that ran out of lock_timeout, naming the sessions that hold or await a conflicting lock.';
