-- The work of one run, all in the caller's transaction: take the queued changes, then
-- recompute every pair (full), only the pairs they touched (incremental), or nothing (noop);
-- log problems, upsert, purge, record the outcome. Any error rolls the work back (the queued
-- changes included) and leaves one 'run' failure; should pipeline_failures refuse even that
-- row (disk full, a failing trigger), the run is still recorded as failed, saying so. Last, the
-- run's failures go to the server log too (_log_failures).
-- SECURITY DEFINER: the work runs with the owner's rights (every routine it calls pins
-- search_path too), so the role running the pipeline needs no rights on its tables or on the
-- source tables. It works only on a running run that this session began (_require_run), and
-- refuses to start while the session has temporary objects of the run's names.
-- The SET clauses pin, for every step it calls, the settings a run's meaning depends on, so
-- that neither the caller's session nor its role's defaults choose what a run computes: how
-- literals and dates are read and written as text (failure messages, dynamic SQL), how NULLs
-- compare, how PL/pgSQL resolves names and reports errors, that a caught error does not end
-- the session, where temporary tables go, and that no row-level security policy runs.
CREATE OR REPLACE FUNCTION pipeline._execute_run(p_run_id bigint, p_full boolean)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
SET standard_conforming_strings = on
SET backslash_quote = safe_encoding
SET DateStyle = 'ISO, MDY'
SET IntervalStyle = postgres
SET TimeZone = 'UTC'
SET extra_float_digits = 1
SET bytea_output = hex
SET quote_all_identifiers = off
SET array_nulls = on
SET transform_null_equals = off
SET plpgsql.extra_errors = none
SET exit_on_error = off
SET row_security = off
SET temp_tablespaces = ''
SET default_tablespace = ''
AS $$
DECLARE
    v_mode text;
    v_scoped boolean;
    v_held_back bigint;
    v_written record;
    ex_sqlstate text;
    ex_message text;
    ex_detail text;
    ex_context text;
    ex_log_sqlstate text;
    ex_log_message text;
    v_logged integer := 0;
    v_unlogged pipeline.pipeline_failures;
    v_execution record;
    v_finished timestamptz;
BEGIN
    IF pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'a run step starts only in a transaction that has written nothing yet'
            USING ERRCODE = 'invalid_transaction_state', HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
    PERFORM pipeline._require_run(p_run_id, '_execute_run');
    -- Held until the outcome is recorded: should this function fail before that, the lock
    -- outlives the error (a session lock) and lets _fail_run record the run as failed; a caller
    -- cannot take it by hand first, for only the owner can compute its key.
    SELECT k.execution_key1 AS key1, k.execution_key2 AS key2 INTO v_execution
    FROM pipeline._run_lock_keys(p_run_id) AS k;
    IF NOT pg_try_advisory_lock(v_execution.key1, v_execution.key2) THEN
        RAISE EXCEPTION 'another session holds the execution lock of pipeline run %', p_run_id
            USING ERRCODE = 'lock_not_available',
                  HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
    BEGIN
        PERFORM pipeline._refuse_foreign_objects();
        PERFORM pipeline._refuse_temp_objects();
        PERFORM set_config('work_mem', s.work_mem, true) FROM pipeline.settings AS s;
        -- Compiling the run's few large statements costs more than it saves (over a second at
        -- millions of pairs), and their row estimates, which decide whether to compile, are rough.
        PERFORM set_config('jit', 'off', true);
        -- A source table someone holds locked (an application's ALTER TABLE or LOCK TABLE) must
        -- not keep the run waiting for ever, and every later run skipped behind it: wait at most
        -- a minute, then fail, saying so. A lock_timeout the session sets (1 s or more) stands.
        IF current_setting('lock_timeout') = '0' THEN
            PERFORM set_config('lock_timeout', '1min', true);
        END IF;
        PERFORM pipeline._lock_source_tables();  -- first: nothing is swapped between check and reads
        v_mode := pipeline._drain_changes(p_full);  -- reads the queue and the catalog, no source row
        IF v_mode = 'noop' THEN
            v_held_back := pipeline._carry_failures_forward(p_run_id);
            SELECT 0::bigint AS rows_inserted, 0::bigint AS rows_updated, 0::bigint AS rows_failed INTO v_written;
        ELSE
            -- Before the first read of a source table, not in a no-op, which reads none: each
            -- pg_cron job is a new session, where the check's catalog queries are a tenth to a
            -- sixth of a no-op's time. Something planted meanwhile fails the next run that reads.
            -- The guard's DDL on source and child tables waits from here to the end of the reads,
            -- and the run for the end of any such DDL under way, so the check sees what is read.
            BEGIN
                LOCK TABLE pipeline.source_guard_lock IN SHARE MODE;
            EXCEPTION WHEN lock_not_available THEN  -- an open DDL transaction: name it
                PERFORM pipeline._raise_lock_timeout('pipeline.source_guard_lock', 'SHARE');
            END;
            PERFORM pipeline._check_source_tables();
            -- an incremental run recomputes only the pairs in the scope its changes make
            v_scoped := v_mode = 'incremental';
            PERFORM pipeline._parse_schedules();
            IF v_scoped THEN
                PERFORM pipeline._build_scope();
                -- changes that reach most of the source (an application's UPDATE of every row)
                -- cost a full run less than an incremental one
                IF pipeline._scope_is_large() THEN
                    v_scoped := false;
                    v_mode := 'full';
                    SET LOCAL random_page_cost TO DEFAULT;  -- _build_scope's, for a small scope
                END IF;
            END IF;
            -- a full run works in unlogged tables that parallel workers can read
            PERFORM pipeline._prepare_candidates(v_scoped, p_parallel => NOT v_scoped);
            v_held_back := pipeline._record_held_back(p_run_id, v_scoped);
            SELECT * INTO v_written FROM pipeline._upsert_windows(p_run_id, v_scoped);
            -- rows written by this run are the source's: a table it loaded empty has none to
            -- retire, nor any of a pair held back for its activity to mark
            PERFORM pipeline._mark_held_back_windows(v_scoped,
                                                     p_table_was_empty => v_written.loaded_into_empty);
            IF NOT v_written.loaded_into_empty THEN
                PERFORM pipeline._retire_windows(v_scoped);
            END IF;
            IF NOT v_scoped THEN
                PERFORM pipeline._drop_run_tables();
            END IF;
        END IF;
        PERFORM pipeline._purge_history(p_run_id);
        -- A deferred constraint trigger (on pipeline_failures, say) fails here, where this block
        -- catches it, rather than at the caller's COMMIT.
        SET CONSTRAINTS ALL IMMEDIATE;

        v_finished := clock_timestamp();
        UPDATE pipeline.pipeline_runs AS r
        SET status = 'succeeded',
            mode = v_mode,
            finished_at = v_finished,
            sla_breached = pipeline._sla_breached(r.started_at, v_finished),
            rows_inserted = v_written.rows_inserted,
            rows_updated = v_written.rows_updated,
            rows_held_back = v_held_back + v_written.rows_failed,
            failures = (SELECT count(*) FROM pipeline.pipeline_failures AS f WHERE f.run_id = p_run_id)
        WHERE r.run_id = p_run_id;
        PERFORM pipeline._log_failures(p_run_id);  -- last: only what this transaction keeps
        PERFORM pg_advisory_unlock(v_execution.key1, v_execution.key2);
        RETURN 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- query_canceled too: a statement_timeout must still leave a failed run behind.
        GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE, ex_message = MESSAGE_TEXT,
                                ex_detail = PG_EXCEPTION_DETAIL, ex_context = PG_EXCEPTION_CONTEXT;
        -- A lock timeout after the run's own waits (planning a read waits for an index, say,
        -- which a REINDEX holds): name what holds the source relations or their indexes.
        IF ex_sqlstate = '55P03' AND ex_message = 'canceling statement due to lock timeout' THEN
            ex_message := ex_message || ' on a source table or an index of one: '
                || coalesce(pipeline._lock_holders(
                                (SELECT array_agg(r.oid) FROM pg_catalog.pg_class AS r
                                 JOIN pipeline._source_relations() AS s
                                   ON r.oid = s.relation
                                   OR r.oid IN (SELECT x.indexrelid FROM pg_catalog.pg_index AS x
                                                WHERE x.indrelid = s.relation)),
                                'ACCESS SHARE'),
                            'no session holds one in a conflicting mode now');
        END IF;
    END;

    -- Its own block: a failure row that cannot be written must not keep the run from being
    -- recorded as failed.
    BEGIN
        INSERT INTO pipeline.pipeline_failures (run_id, stage, sqlstate, error_message, error_detail, error_context)
        VALUES (p_run_id, 'run', ex_sqlstate, ex_message, nullif(ex_detail, ''), ex_context);
        SET CONSTRAINTS ALL IMMEDIATE;
        v_logged := 1;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        GET STACKED DIAGNOSTICS ex_log_sqlstate = RETURNED_SQLSTATE, ex_log_message = MESSAGE_TEXT;
    END;
    v_finished := clock_timestamp();
    UPDATE pipeline.pipeline_runs AS r
    SET status = 'failed',
        mode = v_mode,
        finished_at = v_finished,
        sla_breached = pipeline._sla_breached(r.started_at, v_finished),
        failures = v_logged,
        error_message = format('%s (SQLSTATE %s)', ex_message, ex_sqlstate)
                        || CASE WHEN v_logged = 0
                                THEN format('; this failure could not be logged in pipeline_failures: %s (SQLSTATE %s)',
                                            ex_log_message, ex_log_sqlstate)
                                ELSE '' END
    WHERE r.run_id = p_run_id;
    IF v_logged = 1 THEN
        PERFORM pipeline._log_failures(p_run_id);
    ELSE  -- the server log still gets the line that pipeline_failures refused
        v_unlogged.run_id := p_run_id;
        v_unlogged.failed_at := v_finished;
        v_unlogged.stage := 'run';
        v_unlogged.sqlstate := ex_sqlstate;
        v_unlogged.error_message := ex_message;
        v_unlogged.rows_held_back := 0;
        PERFORM pipeline._log_failures(p_run_id, to_jsonb(v_unlogged));
    END IF;
    PERFORM pg_advisory_unlock(v_execution.key1, v_execution.key2);
    RETURN 'failed';
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._execute_run(bigint, boolean) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._execute_run(bigint, boolean) IS
    'One run''s work in one transaction (full when p_full or needed); returns succeeded or failed (the error is '
    'logged as a run failure, or in pipeline_runs.error_message when pipeline_failures refuses it).';
