-- The routines' signatures of this release; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline._mark_held_back_windows(boolean, boolean);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, boolean);
