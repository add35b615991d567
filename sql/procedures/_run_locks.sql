-- Who holds a run's own lock now, in which mode.
CREATE OR REPLACE FUNCTION pipeline._run_locks(p_run_id bigint)
RETURNS TABLE (pid integer, mode text, role_name text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.pid, h.mode, h.role_name
    FROM pipeline._run_lock_keys(p_run_id) AS k
    CROSS JOIN pipeline._advisory_holders(k.run_key1, k.run_key2) AS h
$$;

COMMENT ON FUNCTION pipeline._run_locks(bigint) IS
    'The sessions (pid, role) holding a run''s own advisory lock, and in which mode.';
