-- The routines only this release has, or whose parameters it renamed; the older release's
-- migrate re-creates its own (_record_skipped_run, _holds_run_lock, _require_run_lock, _fail_run).
DROP FUNCTION IF EXISTS pipeline._fail_run(bigint, text);
DROP FUNCTION IF EXISTS pipeline._require_run(bigint, text);
DROP FUNCTION IF EXISTS pipeline._release_run_locks();
DROP FUNCTION IF EXISTS pipeline._run_is_live(bigint, integer);
DROP FUNCTION IF EXISTS pipeline._run_locks(bigint);
DROP FUNCTION IF EXISTS pipeline._execution_lock_key(bigint);
DROP FUNCTION IF EXISTS pipeline._advisory_holders(integer, integer);
DROP FUNCTION IF EXISTS pipeline._run_lock_key(bigint);
DROP FUNCTION IF EXISTS pipeline._refuse_temp_objects();
DROP FUNCTION IF EXISTS pipeline._block_run(bigint, text);
ALTER TABLE pipeline.pipeline_runs DROP CONSTRAINT pipeline_runs_trigger_check;
COMMENT ON COLUMN pipeline.pipeline_runs.trigger IS 'Who started the run: cron, manual, ...';
DROP TABLE pipeline.run_secret;
DROP TABLE pipeline.run_lock;
