DROP VIEW IF EXISTS pipeline.activity_adherence;
DROP FUNCTION IF EXISTS pipeline.adherence(date);
-- this release captures changes to pipeline.settings (a new report_time_zone re-dates results)
DROP TRIGGER IF EXISTS pipeline_capture_changes ON pipeline.settings;
DROP TRIGGER IF EXISTS pipeline_capture_truncate ON pipeline.settings;
DROP TRIGGER IF EXISTS pipeline_capture_replica ON pipeline.settings;
DROP FUNCTION IF EXISTS pipeline._retire_windows(boolean);
DROP FUNCTION IF EXISTS pipeline._mark_held_back_windows(boolean);
ALTER TABLE pipeline.held_back_pair
    DROP COLUMN IF EXISTS patient_id,
    DROP COLUMN IF EXISTS activity_content_slug,
    DROP COLUMN IF EXISTS result_count;
ALTER TABLE pipeline.patient_journey_schedule_window
    DROP COLUMN IF EXISTS retired_at,
    DROP COLUMN IF EXISTS result_count,
    DROP COLUMN IF EXISTS completed_on,
    DROP COLUMN IF EXISTS held_back;
ALTER TABLE pipeline.settings DROP COLUMN IF EXISTS report_time_zone;
DROP FUNCTION IF EXISTS pipeline._is_time_zone_name(text);
INSERT INTO pipeline.change_queue (kind) VALUES ('full');
