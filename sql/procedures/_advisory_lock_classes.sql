-- The first key (key1) of the pipeline's two kinds of advisory lock, defined here once: a run's
-- own lock and its execution lock (_run_lock_keys derives their keys); _release_run_locks
-- finds this session's run locks by them in pg_locks. The second key is derived per run from the
-- owner's secret. Constants, no secret: any role may call it, as _release_run_locks does in the
-- caller's session. (migrate's own lock, taken before any routine exists, is the one key in
-- pytools/migrations.py.)
CREATE OR REPLACE FUNCTION pipeline._advisory_lock_classes(OUT run_lock integer, OUT execution_lock integer)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 485739402, 485739403
$$;

COMMENT ON FUNCTION pipeline._advisory_lock_classes() IS
    'key1 of a run''s own advisory lock and of its execution lock (pg_locks.classid).';
