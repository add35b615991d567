-- A run's lock wait on p_relation (asked in p_mode, e.g. 'ACCESS SHARE') ran out of lock_timeout:
-- fail saying what stood in its way, so that the failure a monitor sees names the session to
-- end: the sessions that hold a lock on p_relation or a table under it in a conflicting mode, or
-- queued for one before the run did, with their role, application and how long their
-- transaction has been open (where this role may see it), and any prepared transaction holding
-- one. Called only once the wait has failed: a run that gets its lock never compiles it.
CREATE OR REPLACE FUNCTION pipeline._raise_lock_timeout(p_relation regclass, p_mode text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- PostgreSQL's conflict table: the modes (by level, 1 = ACCESS SHARE ... 8 = ACCESS EXCLUSIVE)
    -- that conflict with each mode
    c_modes CONSTANT text[] := ARRAY['ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE',
                                     'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'];
    c_conflicts CONSTANT integer[] := ARRAY[[8, 0, 0, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0, 0, 0],
                                            [5, 6, 7, 8, 0, 0, 0, 0], [4, 5, 6, 7, 8, 0, 0, 0],
                                            [3, 4, 6, 7, 8, 0, 0, 0], [3, 4, 5, 6, 7, 8, 0, 0],
                                            [2, 3, 4, 5, 6, 7, 8, 0], [1, 2, 3, 4, 5, 6, 7, 8]];
    v_level integer := array_position(c_modes, upper(p_mode));
    v_conflicting text[];
    v_sessions text;
BEGIN
    IF v_level IS NULL THEN
        RAISE EXCEPTION 'not a table lock mode: %', p_mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(replace(initcap(c_modes[c]), ' ', '') || 'Lock') INTO v_conflicting
    FROM unnest(c_conflicts[v_level:v_level][1:8]) AS c
    WHERE c > 0;

    WITH RECURSIVE locked (relation) AS (  -- LOCK TABLE takes each child's lock as well
        SELECT p_relation::oid
        UNION
        SELECT i.inhrelid FROM locked AS k JOIN pg_catalog.pg_inherits AS i ON i.inhparent = k.relation
    )
    SELECT string_agg(format('%s %s %s in %s mode',
                             CASE WHEN l.pid IS NOT NULL
                                  THEN format('pid %s (role %s%s%s)', l.pid, coalesce(a.usename::text, 'unknown'),
                                              ', application ' || quote_literal(nullif(a.application_name, '')),
                                              ', transaction open for '
                                              || date_trunc('second', clock_timestamp() - a.xact_start))
                                  -- a prepared transaction keeps its locks, even across restarts,
                                  -- until COMMIT PREPARED or ROLLBACK PREPARED
                                  ELSE format('prepared transaction %s (role %s, prepared at %s)',
                                              coalesce(quote_literal(px.gid), 'unknown'),
                                              coalesce(px.owner::text, 'unknown'), px.prepared) END,
                             CASE WHEN l.granted THEN 'holds' ELSE 'waits for' END,
                             CASE WHEN l.relation = p_relation THEN 'it'
                                  ELSE format('%s (under it)', l.relation::regclass) END,
                             upper(regexp_replace(left(l.mode, -4), '([a-z])([A-Z])', E'\\1 \\2', 'g'))),
                      '; ' ORDER BY l.granted DESC, a.xact_start, l.pid)
    INTO v_sessions
    FROM pg_catalog.pg_locks AS l
    LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
    -- a prepared transaction's locks have no pid; its own transaction id lock names it
    LEFT JOIN LATERAL (SELECT p.gid, p.owner, p.prepared
                       FROM pg_catalog.pg_locks AS x
                       JOIN pg_catalog.pg_prepared_xacts AS p ON p.transaction = x.transactionid
                       WHERE l.pid IS NULL AND x.pid IS NULL AND x.locktype = 'transactionid'
                         AND x.virtualtransaction = l.virtualtransaction
                       LIMIT 1) AS px ON true
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
      AND l.relation IN (SELECT k.relation FROM locked AS k)
      AND l.pid IS DISTINCT FROM pg_backend_pid()
      AND l.mode = ANY (v_conflicting)
      -- a waiter counts if it queued before this run did (it waited lock_timeout), not after
      AND (l.granted OR l.waitstart < clock_timestamp() - current_setting('lock_timeout')::interval);

    RAISE EXCEPTION 'lock timeout: waited % for % on %: %', current_setting('lock_timeout'), upper(p_mode),
                    p_relation,
                    coalesce(v_sessions, 'no session holds or awaits a conflicting lock on it or under it now '
                                         '(the one in the way has just ended)')
        USING ERRCODE = 'lock_not_available',
              HINT = 'End that transaction (pg_terminate_backend(pid), or ROLLBACK PREPARED for a prepared one); '
                     'the next run then proceeds.';
END;
$$;

COMMENT ON FUNCTION pipeline._raise_lock_timeout(regclass, text) IS
    'Fails a lock wait that ran out of lock_timeout, naming the sessions that hold or await a conflicting lock.';
