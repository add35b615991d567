-- Who holds a run's own lock now, in which mode (pg_locks, which every role can read).
CREATE OR REPLACE FUNCTION pipeline._run_locks(p_run_id bigint)
RETURNS TABLE (pid integer, mode text, role_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.pid, l.mode, coalesce(a.usename::text, 'unknown')
    FROM pg_catalog.pg_locks AS l
    CROSS JOIN pipeline._run_lock_key(p_run_id) AS k
    LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory'
      AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
      AND l.objsubid = 2
      AND l.classid = k.key1::bigint::oid
      AND l.objid = k.key2::bigint::oid
$$;

COMMENT ON FUNCTION pipeline._run_locks(bigint) IS
    'The sessions (pid, role) holding a run''s own advisory lock, and in which mode.';
