-- Whether this session holds the pipeline's run lock, the session-level advisory lock that
-- run_patient_journey_pipeline takes (key 4857394021). The routines that run with the owner's
-- rights check it, so that a role granted EXECUTE on them can reach them only through the
-- procedure: one run at a time, never a run outside the lock.
CREATE OR REPLACE FUNCTION pipeline._holds_run_lock()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT
        FROM pg_catalog.pg_locks AS l
        WHERE l.locktype = 'advisory'
          AND l.pid = pg_backend_pid()
          AND l.granted
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
          -- a bigint key shows as its high and low 32 bits, with objsubid 1
          AND l.classid::bigint * 4294967296 + l.objid::bigint = 4857394021
          AND l.objsubid = 1
    )
$$;

COMMENT ON FUNCTION pipeline._holds_run_lock() IS
    'True when this session holds the run lock that run_patient_journey_pipeline takes.';
