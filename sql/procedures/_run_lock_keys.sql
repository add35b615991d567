-- The keys of a run's two advisory locks, defined here once; key1 of each is its class
-- (_advisory_lock_classes), key2 is derived from the run_id and pipeline.run_secret, which only
-- the owner can read:
--   run_key:       the run's own lock, which _begin_run takes for the run it records and the
--                  run's session holds until the run ends. No one can take it before the run
--                  begins (an old fixed key could be taken by any role, and a key that followed
--                  the run_id could be guessed), and once pg_locks shows it, that run has it.
--   execution_key: held by _execute_run until it has recorded the run's outcome, so that
--                  _fail_run knows a run whose _execute_run broke; no caller can take it ahead.
-- The two-int4 form: pg_locks shows a key as classid = key1, objid = key2, objsubid = 2.
CREATE OR REPLACE FUNCTION pipeline._run_lock_keys(p_run_id bigint,
                                                   OUT run_key1 integer, OUT run_key2 integer,
                                                   OUT execution_key1 integer, OUT execution_key2 integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.run_lock, ('x' || substr(md5(s.secret || ':run:' || p_run_id::text), 1, 8))::bit(32)::integer,
           c.execution_lock, ('x' || substr(md5(s.secret || ':execution:' || p_run_id::text), 1, 8))::bit(32)::integer
    FROM pipeline.run_secret AS s CROSS JOIN pipeline._advisory_lock_classes() AS c
$$;

REVOKE ALL ON FUNCTION pipeline._run_lock_keys(bigint) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._run_lock_keys(bigint) IS
    'The advisory lock keys of a run''s own lock and of its execution lock, from the run_id and the owner''s secret.';
