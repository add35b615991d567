-- Who holds an advisory lock of this database now (two-int4 key), in which mode, as which role:
-- pg_locks, which every role can read, and the role from pg_stat_activity.
CREATE OR REPLACE FUNCTION pipeline._advisory_holders(p_key1 integer, p_key2 integer)
RETURNS TABLE (pid integer, mode text, role_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.pid, l.mode, coalesce(a.usename::text, 'unknown')
    FROM pg_catalog.pg_locks AS l
    LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory'
      AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
      -- the two-int4 form shows as classid = key1, objid = key2, objsubid = 2
      AND l.objsubid = 2
      AND l.classid = p_key1::bigint::oid
      AND l.objid = (p_key2::bigint & 4294967295)::oid
$$;

COMMENT ON FUNCTION pipeline._advisory_holders(integer, integer) IS
    'The sessions (pid, role) holding the advisory lock (key1, key2) in this database, and in which mode.';
