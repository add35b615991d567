-- depends: 0013.adherence
-- Issue 12: every bulk write drops the unchanged candidates with a join before ON CONFLICT, so
-- the write no longer needs to know whether the run is scoped. The routine with the old
-- signature goes here; migrate then creates the new one.
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, boolean);
