ALTER TABLE pipeline.change_capture_state DROP COLUMN ids_repeat;
-- The routine of this release; the older release's migrate re-creates its own.
DROP FUNCTION IF EXISTS pipeline._missing_source_indexes();
