-- depends: 0005.record-who-ran
-- Issue 8: a run's start and its steps can be reached only by a real run.
--
-- Runs used to keep each other out with a session advisory lock of a fixed key, which any
-- role that can connect may take: every run was then recorded skipped, silently. Now a run's
-- start is serialized by a lock on pipeline.run_lock (only its owner can take a lock on it that
-- conflicts), and a run is live while its session holds the run's own advisory lock, whose key
-- is derived from its run_id and a secret only the owner can read. The run steps check that
-- lock, held exclusively, by the session that began the run: see _begin_run and _require_run.

-- An empty table, locked for a moment by every run's start.
CREATE TABLE pipeline.run_lock ();
REVOKE ALL ON pipeline.run_lock FROM PUBLIC;
COMMENT ON TABLE pipeline.run_lock IS
    'Holds no rows: _begin_run locks it (EXCLUSIVE, for its short transaction) so that two runs '
    'cannot both decide to start. Only its owner can take a lock on it that conflicts.';

-- A secret only the owner can read, from which each run's lock keys are derived: its own lock
-- (_run_lock_key), which no one can then take before the run begins, and its execution lock
-- (_execution_lock_key), which _execute_run holds until it has recorded the outcome, so that
-- _fail_run can tell a run that broke while recording it from a call by hand.
CREATE TABLE pipeline.run_secret (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret text NOT NULL
);
INSERT INTO pipeline.run_secret (secret) VALUES (gen_random_uuid()::text);
REVOKE ALL ON pipeline.run_secret FROM PUBLIC;
COMMENT ON TABLE pipeline.run_secret IS
    'One random secret, readable by the owner alone: runs derive their advisory lock keys from it.';

-- The trigger names who started a run (cron, manual, cli): short printable text, not a payload
-- kept for the retention period. Rows from before are cut to fit, control characters replaced.
UPDATE pipeline.pipeline_runs AS r
SET trigger = coalesce(nullif(left(regexp_replace(r.trigger, '[^ -~]', '?', 'g'), 64), ''), 'unknown')
WHERE r.trigger !~ '^[ -~]{1,64}$';
ALTER TABLE pipeline.pipeline_runs
    ADD CONSTRAINT pipeline_runs_trigger_check CHECK (trigger ~ '^[ -~]{1,64}$');
COMMENT ON COLUMN pipeline.pipeline_runs.trigger IS
    'Who started the run: cron, manual, ... (1 to 64 printable ASCII characters).';

-- Routines this release replaces: the fixed-key lock checks, the skip recorder (the decision to
-- skip is taken by _begin_run now, under run_lock), and _fail_run, whose message parameter
-- became a SQLSTATE. migrate re-creates the current routines after the migrations.
DROP FUNCTION IF EXISTS pipeline._record_skipped_run(text);
DROP FUNCTION IF EXISTS pipeline._require_run_lock(text);
DROP FUNCTION IF EXISTS pipeline._holds_run_lock();
DROP FUNCTION IF EXISTS pipeline._fail_run(bigint, text);
