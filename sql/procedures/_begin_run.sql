-- Start a run, or say why it cannot start. Returns the run_id of the row it records:
--   running  no other run is live: runs marked running whose session is gone (killed backend,
--            crash), idle outside any run, or this very session are marked aborted; the run's
--            own lock is taken for this session (held until the procedure releases it);
--   skipped  another run is live (its session holds its run's lock and is inside a transaction);
--   failed   blocked: another session holds this run's lock (its pid and role are named), which
--            takes the owner's secret to know in advance (see _run_lock_keys), or a session held
--            run_lock for over 10 s (only the owner can).
-- The decision is taken under an EXCLUSIVE lock on pipeline.run_lock, which only the owner can
-- contend, so no role without rights on the pipeline can make runs skip or wait; a fixed-key
-- advisory lock, which any role can take, plays no part. SECURITY DEFINER: the role running the
-- pipeline needs no write access to pipeline_runs. The trigger is checked here, where it enters.
CREATE OR REPLACE FUNCTION pipeline._begin_run(p_trigger text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_trigger text := coalesce(p_trigger, 'manual');
    v_run_id bigint;
    v_live record;
    v_blockers text;
    v_key record;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    -- Before anything else this step runs with the owner's rights: nothing of another role in
    -- schema pipeline, which is on its search_path.
    IF pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'a run step starts only in a transaction that has written nothing yet'
            USING ERRCODE = 'invalid_transaction_state', HINT = 'CALL pipeline.run_patient_journey_pipeline();';
    END IF;
    PERFORM pipeline._refuse_foreign_objects();
    IF v_trigger !~ '^[ -~]{1,64}$' THEN
        RAISE EXCEPTION 'a run''s trigger must be 1 to 64 printable ASCII characters; this one has % characters',
                        char_length(v_trigger)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name who starts the run: CALL pipeline.run_patient_journey_pipeline(''manual'');';
    END IF;

    -- The decision below must see every run committed before the start lock was granted; an
    -- older snapshot (repeatable read, serializable) could miss a live run. The procedure sets
    -- read committed for its transactions; this refuses a call by hand in another level.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'a run can start only in a read committed transaction, not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'CALL pipeline.run_patient_journey_pipeline(); it sets the isolation level itself.';
    END IF;

    -- Locks of this session's earlier runs that an error at a COMMIT left behind.
    PERFORM pipeline._release_run_locks();

    -- Only other runs' starts hold it, for a moment; a longer wait is reported, not waited out.
    PERFORM set_config('lock_timeout', '10s', true);
    BEGIN
        LOCK TABLE pipeline.run_lock IN EXCLUSIVE MODE;
    EXCEPTION WHEN lock_not_available THEN
        SELECT string_agg(format('pid %s (role %s)', l.pid, coalesce(a.usename::text, 'unknown')), ', ')
        INTO v_blockers
        FROM pg_catalog.pg_locks AS l
        LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = l.pid
        WHERE l.relation = 'pipeline.run_lock'::regclass AND l.granted AND l.pid <> pg_backend_pid();
        INSERT INTO pipeline.pipeline_runs (trigger) VALUES (v_trigger) RETURNING run_id INTO v_run_id;
        PERFORM pipeline._block_run(v_run_id,
            format('blocked: %s held a lock on pipeline.run_lock for over 10 s; runs cannot start',
                   coalesce(v_blockers, 'a session')));
        RETURN v_run_id;
    END;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);

    UPDATE pipeline.pipeline_runs AS r
    SET status = 'aborted',
        finished_at = clock_timestamp(),
        error_message = CASE
            WHEN r.backend_pid = pg_backend_pid()
                THEN 'its session started another run before this one finished (an error at a COMMIT, '
                     'or its steps called by hand); nothing after its last COMMIT was kept'
            WHEN EXISTS (SELECT FROM pipeline._run_locks(r.run_id) AS l WHERE l.pid = r.backend_pid)
                THEN format('its session (pid %s) is idle outside any run (an error at a COMMIT, or its '
                            'steps called by hand); nothing after its last COMMIT was kept', r.backend_pid)
            ELSE 'its session ended before the run finished (killed backend, server crash, or its steps '
                 'called by hand); nothing it wrote was kept'
        END
    WHERE r.status = 'running' AND NOT pipeline._run_is_live(r.run_id, r.backend_pid);

    SELECT r.run_id, r.backend_pid, r.run_by, r.started_at INTO v_live
    FROM pipeline.pipeline_runs AS r WHERE r.status = 'running' ORDER BY r.run_id LIMIT 1;
    IF FOUND THEN
        INSERT INTO pipeline.pipeline_runs (trigger, status, finished_at, error_message)
        VALUES (v_trigger, 'skipped', clock_timestamp(),
                format('another run held the pipeline: run %s (pid %s, role %s), running since %s UTC%s',
                       v_live.run_id, v_live.backend_pid, v_live.run_by,
                       to_char(v_live.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                       -- a run that is itself kept waiting: say by whom, so a monitor can act
                       -- (pid 0: a prepared transaction, which has none)
                       (SELECT ', waiting for a lock held by '
                               || string_agg(CASE WHEN b.pid = 0 THEN 'a prepared transaction (pg_prepared_xacts)'
                                                  ELSE format('pid %s (role %s)', b.pid,
                                                              coalesce(a.usename::text, 'unknown')) END, ', ')
                        FROM unnest(pg_blocking_pids(v_live.backend_pid)) AS b (pid)
                        LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = b.pid)))
        RETURNING run_id INTO v_run_id;
        RETURN v_run_id;
    END IF;

    INSERT INTO pipeline.pipeline_runs (trigger) VALUES (v_trigger) RETURNING run_id INTO v_run_id;
    -- A deferred trigger on pipeline_runs fires here, before the run's lock is taken, rather than
    -- at the COMMIT that follows, where the lock would outlive the error.
    SET CONSTRAINTS ALL IMMEDIATE;
    -- The run's own lock, new with the run: held by no one yet, unless someone took its key ahead.
    SELECT k.run_key1 AS key1, k.run_key2 AS key2 INTO v_key FROM pipeline._run_lock_keys(v_run_id) AS k;
    SELECT string_agg(format('pid %s (role %s)', l.pid, l.role_name), ', ') INTO v_blockers
    FROM pipeline._run_locks(v_run_id) AS l;
    IF v_blockers IS NOT NULL OR NOT pg_try_advisory_lock(v_key.key1, v_key.key2) THEN
        PERFORM pipeline._block_run(v_run_id,
            format('blocked: %s held this run''s lock before it began', coalesce(v_blockers, 'a session')));
        RETURN v_run_id;
    END IF;
    RETURN v_run_id;
END;
$$;

-- Granted to the role that runs the pipeline (pipeline.grant_access()), not to everyone.
REVOKE ALL ON FUNCTION pipeline._begin_run(text) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._begin_run(text) IS
    'Records a run as running (taking its own lock), skipped (another run is live) or failed (blocked, naming '
    'who blocks it); marks runs whose session is gone or idle as aborted. Returns the run_id.';
