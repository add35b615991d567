-- The schema itself stays: yoyo keeps its own bookkeeping tables in it.
DROP VIEW pipeline.current_failures;
DROP TABLE pipeline.pipeline_failures;
DROP TABLE pipeline.pipeline_runs;
DROP TABLE pipeline.patient_journey_schedule_window;
DROP TABLE pipeline.milestone_alias;
DROP TABLE pipeline.milestone;
DROP TABLE pipeline.settings;
