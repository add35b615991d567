-- The routines this release added; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline.preview_run();
DROP FUNCTION IF EXISTS pipeline._prepare_candidates(boolean);
DROP FUNCTION IF EXISTS pipeline._record_held_back(bigint, boolean);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, boolean);
DROP FUNCTION IF EXISTS pipeline._write_windows(boolean, bigint, bigint);
DROP FUNCTION IF EXISTS pipeline._run_lock_keys(bigint);
