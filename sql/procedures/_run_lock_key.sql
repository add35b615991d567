-- The key of a run's own lock: the session-level advisory lock that _begin_run takes for the
-- run it records and that the run's session holds until the run ends. One key per run, derived
-- from the run_id and pipeline.run_secret, which only the owner can read: no one can take a
-- run's lock before the run begins (an old fixed key could be taken by any role, and a key
-- that followed the run_id could be guessed), and once pg_locks shows it, that run has it.
CREATE OR REPLACE FUNCTION pipeline._run_lock_key(p_run_id bigint, OUT key1 integer, OUT key2 integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- the two-int4 form: pg_locks shows it as classid = key1, objid = key2, objsubid = 2
    SELECT c.run_lock, ('x' || substr(md5(s.secret || ':run:' || p_run_id::text), 1, 8))::bit(32)::integer
    FROM pipeline.run_secret AS s CROSS JOIN pipeline._advisory_lock_classes() AS c
$$;

REVOKE ALL ON FUNCTION pipeline._run_lock_key(bigint) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._run_lock_key(bigint) IS
    'The advisory lock key (key1, key2) of a run''s own lock, from the run_id and the owner''s secret.';
