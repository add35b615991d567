-- Write a run's failures to the server log, one line each (pipeline.failure_log_line), where a
-- DBA already collects logs; called as a run records its outcome, so a line names a failure
-- that the run's commit keeps. LOG reaches the server log at the default log_min_messages
-- (which only a superuser may change) and not the client at the default client_min_messages.
CREATE OR REPLACE FUNCTION pipeline._log_failures(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_line text;
BEGIN
    FOR v_line IN
        SELECT pipeline.failure_log_line(to_jsonb(f)) FROM pipeline.pipeline_failures AS f
        WHERE f.run_id = p_run_id ORDER BY f.failure_id
    LOOP
        RAISE LOG '%', v_line;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION pipeline._log_failures(bigint) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._log_failures(bigint) IS
    'Writes each failure of the run to the server log (RAISE LOG), one pipeline.failure_log_line each.';
