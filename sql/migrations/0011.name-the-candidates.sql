-- depends: 0009.declare-once-freeze-migrations 0010.hand-back-the-run
-- Issue 9: a run's candidates are temporary views of fixed names (_prepare_candidates), no
-- longer SQL text handed from step to step, and a run's two lock keys come from one function.
-- The routines with the old signatures go here; migrate then creates the new ones.
DROP FUNCTION IF EXISTS pipeline._candidate_queries(boolean);
DROP FUNCTION IF EXISTS pipeline._record_held_back(bigint, boolean, text);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, text, boolean);
DROP FUNCTION IF EXISTS pipeline._write_windows(text, boolean, bigint, bigint);
DROP FUNCTION IF EXISTS pipeline._run_lock_key(bigint);
DROP FUNCTION IF EXISTS pipeline._execution_lock_key(bigint);
