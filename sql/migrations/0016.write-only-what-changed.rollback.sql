-- The routine this release added; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint);
