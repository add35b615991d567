-- depends: 0011.name-the-candidates
-- Issue 11: the original script's SLA. A run that takes longer than settings.sla (default ten
-- minutes, as the original) records sla_breached and raises a WARNING, which leaves pg_cron's
-- status at succeeded: a slow run is a monitoring matter, not a failed one.
ALTER TABLE pipeline.settings
    ADD COLUMN sla interval DEFAULT interval '10 minutes'
        CONSTRAINT settings_sla_from_a_second_to_a_day
        CHECK (sla IS NULL OR sla BETWEEN interval '1 second' AND interval '1 day');

COMMENT ON COLUMN pipeline.settings.sla IS
    'A run that takes longer breaches it: pipeline_runs.sla_breached, a WARNING, and check / metrics show it. '
    'NULL turns it off. From 1 second to 1 day; default 10 minutes.';
COMMENT ON CONSTRAINT settings_sla_from_a_second_to_a_day ON pipeline.settings IS
    'An SLA is a duration from a second to a day, or NULL (none).';

ALTER TABLE pipeline.pipeline_runs ADD COLUMN sla_breached boolean;

COMMENT ON COLUMN pipeline.pipeline_runs.sla_breached IS
    'Whether the run took longer than settings.sla (false when no SLA is set); NULL for a run that never ran its work.';
