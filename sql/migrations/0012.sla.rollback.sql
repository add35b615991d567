DROP FUNCTION IF EXISTS pipeline._sla_breached(timestamptz, timestamptz);
ALTER TABLE pipeline.pipeline_runs DROP COLUMN IF EXISTS sla_breached;
ALTER TABLE pipeline.settings DROP COLUMN IF EXISTS sla;
