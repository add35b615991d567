-- Grant the package's two kinds of access to the roles a DBA created for them (README, "Roles"):
--   pipeline_runner  may run the pipeline: EXECUTE on the procedure and on the three steps it
--                    calls with the owner's rights; SELECT on pipeline_runs to read the outcome.
--                    Nothing else: it cannot write any table, nor read the source tables.
--   pipeline_reader  may read the results: the window table, pipeline_failures,
--                    current_failures, pipeline_runs, and adherence: pipeline.adherence(date),
--                    pipeline._adherence(date) (which it reads), pipeline._adherence_counts(date)
--                    and the counts it reads, pipeline.adherence_group (the report's),
--                    pipeline.activity_adherence and what the inlined functions read with the
--                    caller's rights: the columns of held_back_pair it reports and
--                    settings.report_time_zone; and pipeline.failure_log_line, the line
--                    `failures --log` writes. Nothing else: not the source tables.
-- Both also get USAGE on the schema and SELECT on yoyo's migration list, which the CLI reads
-- to check that the schema is up to date. A role that does not exist is skipped (granted =
-- false). Run by every migrate, as the owner; safe to repeat. Give these rights to other roles
-- by membership: GRANT pipeline_reader TO analyst;
CREATE OR REPLACE FUNCTION pipeline.grant_access()
RETURNS TABLE (role_name text, granted boolean, access text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    role_name := 'pipeline_runner';
    granted := EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = role_name);
    access := 'may run the pipeline (EXECUTE on pipeline.run_patient_journey_pipeline) and read pipeline_runs';
    IF granted THEN
        GRANT USAGE ON SCHEMA pipeline TO pipeline_runner;
        GRANT EXECUTE ON PROCEDURE pipeline.run_patient_journey_pipeline(text, boolean, bigint) TO pipeline_runner;
        GRANT EXECUTE ON FUNCTION pipeline._begin_run(text), pipeline._execute_run(bigint, boolean),
                                  pipeline._fail_run(bigint, text) TO pipeline_runner;
        GRANT SELECT ON pipeline.pipeline_runs TO pipeline_runner;
        IF to_regclass('pipeline._yoyo_migration') IS NOT NULL THEN
            GRANT SELECT ON pipeline._yoyo_migration TO pipeline_runner;
        END IF;
    END IF;
    RETURN NEXT;

    role_name := 'pipeline_reader';
    granted := EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = role_name);
    access := 'may read patient_journey_schedule_window, pipeline_failures, current_failures, pipeline_runs and adherence';
    IF granted THEN
        GRANT USAGE ON SCHEMA pipeline TO pipeline_reader;
        GRANT SELECT ON pipeline.patient_journey_schedule_window, pipeline.pipeline_failures,
                        pipeline.current_failures, pipeline.pipeline_runs TO pipeline_reader;
        -- adherence is inlined into the reader's query, which reads these columns itself
        GRANT SELECT ON pipeline.activity_adherence, pipeline.adherence_group TO pipeline_reader;
        GRANT SELECT (patient_journey_id, activity_id, held_back, schedule_slug, milestone_slug, patient_id,
                      activity_content_slug, result_count)
            ON pipeline.held_back_pair TO pipeline_reader;
        -- only when missing: a GRANT rewrites the column's catalog row even when nothing changes,
        -- and pipeline.settings is watched by change capture, which would take that for a change
        IF NOT has_column_privilege('pipeline_reader', 'pipeline.settings', 'report_time_zone', 'SELECT') THEN
            GRANT SELECT (report_time_zone) ON pipeline.settings TO pipeline_reader;
        END IF;
        -- _adherence: what adherence reads (adherence with the status as its rank); _adherence_counts:
        -- what the report reads; _settled_rank: the status both compute
        GRANT EXECUTE ON FUNCTION pipeline.adherence(date), pipeline._adherence(date), pipeline._adherence_counts(date),
                                  pipeline._settled_rank(bigint, text, date, date, date, date, integer)
            TO pipeline_reader;
        -- `failures --log` writes the lines the runs write to the server log
        GRANT EXECUTE ON FUNCTION pipeline.failure_log_line(jsonb),
                                  pipeline._log_text(text, integer) TO pipeline_reader;
        IF to_regclass('pipeline._yoyo_migration') IS NOT NULL THEN
            GRANT SELECT ON pipeline._yoyo_migration TO pipeline_reader;
        END IF;
    END IF;
    RETURN NEXT;
END;
$$;

COMMENT ON FUNCTION pipeline.grant_access() IS
    'Grants pipeline_runner the right to run the pipeline and pipeline_reader the right to read its results, '
    'where those roles exist; run by migrate. Other roles get them by membership (GRANT pipeline_reader TO analyst).';
