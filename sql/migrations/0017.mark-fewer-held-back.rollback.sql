-- The routine's signature of this release; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline._mark_held_back_windows(boolean, boolean);
