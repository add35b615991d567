-- Delete runs and failures older than pipeline.settings.retention.
CREATE OR REPLACE FUNCTION pipeline._purge_history(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz;
BEGIN
    SELECT now() - s.retention INTO v_cutoff FROM pipeline.settings AS s;
    IF v_cutoff IS NULL THEN
        v_cutoff := now() - interval '30 days';
    END IF;
    DELETE FROM pipeline.pipeline_failures AS f WHERE f.failed_at < v_cutoff;
    DELETE FROM pipeline.pipeline_runs AS r
    WHERE r.started_at < v_cutoff AND r.status <> 'running' AND r.run_id <> p_run_id;
END;
$$;

COMMENT ON FUNCTION pipeline._purge_history(bigint) IS
    'Run step 5: purges pipeline_failures and pipeline_runs older than settings.retention (default 30 days).';
