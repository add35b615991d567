-- One failure as one line of text, for the server log (each run RAISEs LOG it) and for
-- `failures --log FILE`, so both carry the same line and one grep finds it in either:
--   pipeline_failure run_id=42 failure_id=1001 failed_at=2026-12-02T03:00:00.000001Z stage=parse
--   schedule_id=7 schedule_slug="4x-pre-op" patient_journey_id= activity_id= sqlstate="22023"
--   rows_held_back=3 message="..."
-- logfmt (key=value, which log shippers parse): an empty value is NULL. Texts come from the
-- source tables' owner and from error messages, so each is a JSON string with its controls
-- escaped (pipeline._log_text): a newline or a quote in a slug cannot end the line or forge
-- another one; and cut, so a huge slug cannot flood the log. Times in UTC, whatever TimeZone.
-- It takes the row as jsonb (to_jsonb(f)), so that no routine depends on the table's type,
-- which a migration's rollback may drop. PL/pgSQL, so that a run logging 20,000 failures plans
-- this once, not once a line (a SQL function pinning search_path is never inlined).
CREATE OR REPLACE FUNCTION pipeline.failure_log_line(p_failure jsonb)
RETURNS text
LANGUAGE plpgsql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN format(
        'pipeline_failure run_id=%s failure_id=%s failed_at=%s stage=%s schedule_id=%s schedule_slug=%s '
        'patient_journey_id=%s activity_id=%s sqlstate=%s rows_held_back=%s message=%s',
        (p_failure->>'run_id')::bigint, (p_failure->>'failure_id')::bigint,
        to_char((p_failure->>'failed_at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        regexp_replace(p_failure->>'stage', '[^a-z]', '?', 'g'),  -- one of four words: unquoted
        (p_failure->>'schedule_id')::bigint,
        pipeline._log_text(p_failure->>'schedule_slug', 200),
        (p_failure->>'patient_journey_id')::bigint, (p_failure->>'activity_id')::bigint,
        pipeline._log_text(p_failure->>'sqlstate', 5),
        (p_failure->>'rows_held_back')::bigint,
        pipeline._log_text(p_failure->>'error_message', 1000));
END;
$$;

-- Granted to pipeline_reader (pipeline.grant_access()); it shows nothing its caller could not read.
REVOKE ALL ON FUNCTION pipeline.failure_log_line(jsonb) FROM PUBLIC;

COMMENT ON FUNCTION pipeline.failure_log_line(jsonb) IS
    'A failure as one logfmt line starting "pipeline_failure run_id=": what each run writes to the server '
    'log and `failures --log` to a file. Texts are JSON-quoted and cut; times in UTC; an empty value is NULL.';
