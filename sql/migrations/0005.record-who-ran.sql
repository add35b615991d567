-- depends: 0004.speed-up-routine-runs
-- A run's steps execute with the owner's rights (SECURITY DEFINER), where current_user is the
-- owner; the role that logged in and called the procedure is session_user.
ALTER TABLE pipeline.pipeline_runs ALTER COLUMN run_by SET DEFAULT session_user;

COMMENT ON COLUMN pipeline.pipeline_runs.run_by IS
    'The role that logged in and started the run (the pg_cron job''s role for cron runs).';
