-- The key of a run's own lock: the session-level advisory lock that _begin_run takes for the
-- run it records and that the run's session holds until the run ends. One key per run, so no
-- lock taken before a run began can pose as it (an old fixed key did: anyone could take it).
CREATE OR REPLACE FUNCTION pipeline._run_lock_key(p_run_id bigint, OUT key1 integer, OUT key2 integer)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 485739402, (p_run_id OPERATOR(pg_catalog.%) 2147483648)::integer
$$;

COMMENT ON FUNCTION pipeline._run_lock_key(bigint) IS
    'The advisory lock key (key1, key2) of a run''s own lock: key1 is the pipeline''s, key2 the run_id.';
