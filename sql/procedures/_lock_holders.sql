-- Who stands in the way of a lock in p_mode (e.g. 'ACCESS SHARE') on any of p_relations, as
-- one text for a failure (NULL if nobody does now): the sessions that hold a lock on one of them
-- in a conflicting mode, or queued for one before this session's wait began (it waited
-- lock_timeout), with their role, application and how long their transaction has been open
-- (where this role may see it), and any prepared transaction holding one. For a run's lock
-- timeout, so that the failure a monitor sees names what to end; called only then.
CREATE OR REPLACE FUNCTION pipeline._lock_holders(p_relations oid[], p_mode text)
RETURNS text
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
    v_holders text;
BEGIN
    IF v_level IS NULL THEN
        RAISE EXCEPTION 'not a table lock mode: %', p_mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(replace(initcap(c_modes[c]), ' ', '') || 'Lock') INTO v_conflicting
    FROM unnest(c_conflicts[v_level:v_level][1:8]) AS c
    WHERE c > 0;

    SELECT string_agg(format('%s %s %s in %s mode',
                             CASE WHEN l.pid IS NOT NULL
                                  THEN format('pid %s (role %s%s%s)', l.pid, coalesce(a.usename::text, 'unknown'),
                                              ', application ' || quote_literal(nullif(a.application_name, '')),
                                              ', transaction open for '
                                              || date_trunc('second', clock_timestamp() - a.xact_start))
                                  -- a prepared transaction keeps its locks, even across restarts,
                                  -- until COMMIT PREPARED or ROLLBACK PREPARED
                                  -- its gid is any text its role chose: escaped, as for a log line
                                  ELSE format('prepared transaction %s (role %s, prepared at %s)',
                                              coalesce(pipeline._log_text(px.gid, 200), 'unknown'),
                                              coalesce(px.owner::text, 'unknown'), px.prepared) END,
                             CASE WHEN l.granted THEN 'holds' ELSE 'waits for' END,
                             l.relation::regclass,
                             upper(regexp_replace(left(l.mode, -4), '([a-z])([A-Z])', E'\\1 \\2', 'g'))),
                      '; ' ORDER BY l.granted DESC, a.xact_start, l.pid)
    INTO v_holders
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
      AND l.relation = ANY (p_relations)
      AND l.pid IS DISTINCT FROM pg_backend_pid()
      AND l.mode = ANY (v_conflicting)
      -- a waiter counts if it queued before this run did (it waited lock_timeout), not after
      AND (l.granted OR l.waitstart < clock_timestamp() - current_setting('lock_timeout')::interval);

    RETURN v_holders;
END;
$$;

COMMENT ON FUNCTION pipeline._lock_holders(oid[], text) IS
    'The sessions and prepared transactions that hold, or queued first for, a lock conflicting with p_mode on the relations.';
