-- CASCADE removes every change-capture trigger, on the source tables and on ours.
DROP FUNCTION IF EXISTS pipeline._capture_changes() CASCADE;
DROP PROCEDURE IF EXISTS pipeline.run_patient_journey_pipeline(text, boolean);
ALTER TABLE pipeline.pipeline_runs DROP COLUMN mode;
ALTER TABLE pipeline.settings DROP COLUMN work_mem;
DROP TABLE pipeline.held_back_pair;
DROP TABLE pipeline.change_queue;
