-- The report of the earlier release counts pipeline._adherence itself.
DROP TRIGGER IF EXISTS count_adherence_inserted ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_updated ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_deleted ON pipeline.patient_journey_schedule_window;
DROP TRIGGER IF EXISTS count_adherence_truncated ON pipeline.patient_journey_schedule_window;
DROP FUNCTION IF EXISTS pipeline._count_adherence_groups();
DROP FUNCTION IF EXISTS pipeline._rebuild_adherence_groups();
DROP FUNCTION IF EXISTS pipeline._adherence_counts(date);
DROP TABLE pipeline.adherence_group;
-- CASCADE: pipeline._adherence (and what reads it) calls it; migrate of the earlier release creates them again
DROP FUNCTION pipeline._settled_rank(bigint, text, date, date, date, date, integer) CASCADE;
