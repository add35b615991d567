-- CASCADE removes the row-level capture triggers that only this version installs.
DROP FUNCTION IF EXISTS pipeline._capture_row_change() CASCADE;
DROP FUNCTION IF EXISTS pipeline.install_change_capture();
DROP FUNCTION IF EXISTS pipeline._change_capture_problems();
DROP FUNCTION IF EXISTS pipeline._capture_triggers();
DROP FUNCTION IF EXISTS pipeline._capture_state();
ALTER TABLE pipeline.settings DROP COLUMN full_run_every;
DROP TABLE pipeline.change_capture_state;
