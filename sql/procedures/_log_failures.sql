-- Write a run's failures to the server log, one line each (pipeline.failure_log_line), where a
-- DBA already collects logs; called as a run records its outcome, so a line names a failure
-- that the run's commit keeps. p_refused: the run failure that pipeline_failures refused, the
-- one line then. LOG reaches the server log at the default log_min_messages (which only a
-- superuser may change); client_min_messages = error keeps it from the client whatever the
-- calling session set: the lines quote slugs, which pipeline_runner may not read.
CREATE OR REPLACE FUNCTION pipeline._log_failures(p_run_id bigint, p_refused jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
SET client_min_messages = error
AS $$
DECLARE
    v_line text;
BEGIN
    IF p_refused IS NOT NULL THEN
        RAISE LOG '%', pipeline.failure_log_line(p_refused);
        RETURN;
    END IF;
    FOR v_line IN
        SELECT pipeline.failure_log_line(to_jsonb(f)) FROM pipeline.pipeline_failures AS f
        WHERE f.run_id = p_run_id ORDER BY f.failure_id
    LOOP
        RAISE LOG '%', v_line;
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION pipeline._log_failures(bigint, jsonb) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._log_failures(bigint, jsonb) IS
    'Writes each failure of the run (or the refused run failure p_refused) to the server log only (RAISE LOG, '
    'never to the client), one pipeline.failure_log_line each.';
