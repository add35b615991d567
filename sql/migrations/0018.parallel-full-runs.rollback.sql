-- The routines' signatures of this release; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline._prepare_candidates(boolean, boolean);
DROP FUNCTION IF EXISTS pipeline._stage_windows();
DROP FUNCTION IF EXISTS pipeline._drop_run_tables();
