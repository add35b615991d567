-- Whether a run from p_started_at to p_finished_at took longer than pipeline.settings.sla;
-- false when no SLA is set. The one place the SLA is compared.
CREATE OR REPLACE FUNCTION pipeline._sla_breached(p_started_at timestamptz, p_finished_at timestamptz)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(p_finished_at - p_started_at > s.sla, false) FROM pipeline.settings AS s
$$;

COMMENT ON FUNCTION pipeline._sla_breached(timestamptz, timestamptz) IS
    'True when the run took longer than pipeline.settings.sla (false without one).';
