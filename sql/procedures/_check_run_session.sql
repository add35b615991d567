-- Refuse to start a run in a session where it cannot work, naming the setting and where it
-- was set, so that a DBA can fix it, rather than failing later with an obscure error:
--   a standby server (pg_is_in_recovery), or default_transaction_read_only = on: a run writes;
--   statement_timeout above 0 and below 1 second: it would cancel every run but the smallest
--   (a run cannot lift it: it counts from the CALL); lock_timeout above 0 and below 1 second:
--   a run would fail whenever it waits for a lock, even behind autovacuum, which a waiting
--   lock cancels only after deadlock_timeout (1 s by default). Longer timeouts are honoured:
--   they bound a run, which then fails cleanly and leaves the queue for the next run.
-- The settings that change what a run computes are not refused but pinned by
-- pipeline._execute_run. The procedure calls this before it takes the pipeline's lock.
CREATE OR REPLACE FUNCTION pipeline._check_run_session()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_setting record;
    v_where text;
    v_fix text;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'the pipeline cannot run on a standby server (pg_is_in_recovery() is true): a run writes its '
                        'results; run it on the primary'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run and schedule the pipeline on the primary server.';
    END IF;
    -- The common case without pg_settings, which builds every setting (about 0.8 ms of a no-op
    -- run): a time setting shows in the largest unit that divides it, so 1 to 999 ms is exactly
    -- 1 to 3 digits then "ms" (0 shows as 0).
    IF current_setting('default_transaction_read_only') = 'off'
       AND current_setting('statement_timeout') !~ '^[0-9]{1,3}ms$'
       AND current_setting('lock_timeout') !~ '^[0-9]{1,3}ms$' THEN
        RETURN;
    END IF;
    FOR v_setting IN
        SELECT s.name, s.setting, s.unit, s.source,
               CASE s.name
                   WHEN 'default_transaction_read_only' THEN 'a run writes its results'
                   WHEN 'statement_timeout' THEN 'a run needs longer than that'
                   ELSE 'a run must be able to wait that long for a lock, e.g. behind autovacuum'
               END AS reason
        FROM pg_settings AS s
        WHERE (s.name = 'default_transaction_read_only' AND s.setting = 'on')
           OR (s.name IN ('statement_timeout', 'lock_timeout') AND s.setting::integer BETWEEN 1 AND 999)
        ORDER BY s.name
    LOOP
        -- pg_settings.source says where the value came from, and so what undoes it.
        SELECT w.place, w.fix INTO v_where, v_fix
        FROM (VALUES
            ('user', format('a default of role %I', session_user),
                     format('ALTER ROLE %I RESET %s;', session_user, v_setting.name)),
            ('database user', format('a default of role %I in database %I', session_user, current_database()),
                              format('ALTER ROLE %I IN DATABASE %I RESET %s;',
                                     session_user, current_database(), v_setting.name)),
            ('database', format('a default of database %I', current_database()),
                         format('ALTER DATABASE %I RESET %s;', current_database(), v_setting.name)),
            ('configuration file', 'the server''s configuration',
                                   format('ALTER SYSTEM RESET %s; (or edit postgresql.conf), then SELECT pg_reload_conf();',
                                          v_setting.name)),
            ('client', 'the connection''s options', format('remove %s from the connection''s options (PGOPTIONS).',
                                                          v_setting.name))
        ) AS w (source, place, fix)
        WHERE w.source = v_setting.source;
        IF NOT FOUND THEN
            v_where := CASE v_setting.source WHEN 'session' THEN 'a SET in this session' ELSE v_setting.source END;
            v_fix := format('RESET %s; in the session that calls the pipeline.', v_setting.name);
        END IF;
        IF v_setting.name IN ('statement_timeout', 'lock_timeout') THEN
            v_fix := v_fix || format(' To bound a run''s time, set 1s or more: ALTER ROLE %I SET %s = ''1h'';',
                                     session_user, v_setting.name);
        END IF;
        -- the fix in the message too: pg_cron's job log keeps only the message
        RAISE EXCEPTION 'the pipeline refuses to run with % = % (set by %): %; fix: %', v_setting.name,
            v_setting.setting || coalesce(v_setting.unit, ''), v_where, v_setting.reason, v_fix
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = v_fix;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._check_run_session() IS
    'Raises an error naming the setting and its fix when this session cannot run the pipeline: a standby, '
    'a read-only default, a statement_timeout or lock_timeout under 1 second.';
