-- The procedure with the run id this release added; the older release's migrate re-creates
-- its own, pipeline.run_patient_journey_pipeline(text, boolean).
DROP PROCEDURE IF EXISTS pipeline.run_patient_journey_pipeline(text, boolean, bigint);
