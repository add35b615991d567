-- The key of a run's execution lock, which _execute_run holds until it has recorded the run's
-- outcome: derived from the run_id and pipeline.run_secret, which only the owner can read, so a
-- caller cannot take it ahead of the run (the steps that call this run with the owner's rights).
CREATE OR REPLACE FUNCTION pipeline._execution_lock_key(p_run_id bigint, OUT key1 integer, OUT key2 integer)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.execution_lock, ('x' || substr(md5(s.secret || ':execution:' || p_run_id::text), 1, 8))::bit(32)::integer
    FROM pipeline.run_secret AS s CROSS JOIN pipeline._advisory_lock_classes() AS c
$$;

REVOKE ALL ON FUNCTION pipeline._execution_lock_key(bigint) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._execution_lock_key(bigint) IS
    'The advisory lock key (key1, key2) of a run''s execution lock, from the run_id and the owner''s secret.';
