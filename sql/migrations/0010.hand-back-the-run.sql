-- depends: 0006.trust-change-capture 0007.check-settings-where-they-enter 0008.guard-the-run
-- Issue 9: the procedure hands back the run it recorded, as a third parameter
-- INOUT p_run_id bigint DEFAULT NULL. A new signature is a new procedure in PostgreSQL, and
-- one with the old two parameters beside it would make CALL pipeline.run_patient_journey_pipeline()
-- ambiguous: the old one goes here. migrate then creates the new one and grant_access() grants
-- it to pipeline_runner. pg_cron's jobs (CALL pipeline.run_patient_journey_pipeline('cron'))
-- call the new one unchanged. A right to EXECUTE the old one that a DBA granted by hand goes
-- with it: grant it again on pipeline.run_patient_journey_pipeline(text, boolean, bigint).
DROP PROCEDURE IF EXISTS pipeline.run_patient_journey_pipeline(text, boolean);
