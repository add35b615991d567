-- (Re)create the change-capture triggers on every watched table that exists; returns what
-- stands in change capture's way. Safe to repeat: a trigger already as migrate installs it is
-- left alone (re-creating it would write a new catalog row version and so cost a full run).
-- A trigger with transition tables may fire on one event only, hence one trigger per event.
-- Writes made in session_replication_role = replica (the logical replication apply worker,
-- which fires no statement-level trigger but TRUNCATE ones) need the row-level
-- pipeline_capture_replica enabled REPLICA and pipeline_capture_truncate enabled ALWAYS, which
-- only the table's owner can do. Not the owner, migrate creates the row-level trigger only on
-- a table a subscription replicates into (there, left enabled 'O', its WHEN clause keeps it
-- idle until the owner enables it REPLICA; elsewhere it would only cost every row written).
-- full_runs: true when the problem makes every run full until it is fixed; false for a note.
CREATE OR REPLACE FUNCTION pipeline.install_change_capture()
RETURNS TABLE (table_name text, problem text, full_runs boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_watch record;
    v_trigger record;
    v_target regclass;
    v_owner boolean;
    v_unprivileged text[] := ARRAY[]::text[];
BEGIN
    FOR v_watch IN SELECT * FROM pipeline._change_capture_tables() LOOP
        v_target := to_regclass(v_watch.table_name);
        CONTINUE WHEN v_target IS NULL;  -- reported below
        v_owner := pg_has_role((SELECT c.relowner FROM pg_class AS c WHERE c.oid = v_target), 'USAGE');
        BEGIN
            FOR v_trigger IN SELECT * FROM pipeline._capture_triggers() AS t
                             WHERE t.table_name = v_watch.table_name LOOP
                CONTINUE WHEN v_trigger.found AND v_trigger.as_installed
                              AND (v_trigger.enabled IN ('O', 'A')
                                   OR (v_trigger.purpose = 'replica' AND v_trigger.enabled = 'R'));
                CASE v_trigger.trigger_name
                WHEN 'pipeline_capture_truncate' THEN
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_truncate AFTER TRUNCATE ON %s '
                                   'FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes(%L)',
                                   v_target, 'full');
                WHEN 'pipeline_capture_replica' THEN
                    CONTINUE WHEN NOT v_owner
                                  AND NOT EXISTS (SELECT FROM pg_subscription_rel AS sr WHERE sr.srrelid = v_target);
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_replica '
                                   'AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
                                   'WHEN (pg_catalog.current_setting(%L) = %L) '
                                   'EXECUTE FUNCTION pipeline._capture_row_change(%s)',
                                   v_target, 'session_replication_role', 'replica',
                                   CASE WHEN v_watch.kind = 'full' THEN quote_literal('full')
                                        ELSE quote_literal(v_watch.kind) || ', ' || quote_literal(v_watch.key_column) END);
                WHEN 'pipeline_capture_changes' THEN
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_changes '
                                   'AFTER INSERT OR UPDATE OR DELETE ON %s '
                                   'FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes(%L)',
                                   v_target, 'full');
                WHEN 'pipeline_capture_insert' THEN
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_insert AFTER INSERT ON %s '
                                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                                   'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                                   v_target, v_watch.kind, v_watch.key_column);
                WHEN 'pipeline_capture_update' THEN
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_update AFTER UPDATE ON %s '
                                   'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                                   'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                                   v_target, v_watch.kind, v_watch.key_column);
                WHEN 'pipeline_capture_delete' THEN
                    EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_delete AFTER DELETE ON %s '
                                   'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT '
                                   'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                                   v_target, v_watch.kind, v_watch.key_column);
                END CASE;
            END LOOP;
            IF v_owner AND NOT pipeline._replica_writes_captured(v_watch.table_name) THEN
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_truncate, '
                               'ENABLE REPLICA TRIGGER pipeline_capture_replica', v_target);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            v_unprivileged := v_unprivileged || v_watch.table_name;
            table_name := v_watch.table_name;
            problem := format('no right to create triggers: GRANT TRIGGER ON %s TO %I', v_target, current_user);
            full_runs := true;
            RETURN NEXT;
        END;
    END LOOP;

    RETURN QUERY
    SELECT p.table_name, p.problem, true
    FROM pipeline._change_capture_problems() AS p
    WHERE p.table_name <> ALL (v_unprivileged)
    UNION ALL
    SELECT w.table_name,
           format('%I does not own the table, so writes made there in session_replication_role = replica (a superuser''s '
                  'replica-mode session) are not captured, and while a subscription replicates into the table every run '
                  'is full (migrate then names the ALTER TABLE its owner can run)', current_user),
           false
    FROM pipeline._change_capture_tables() AS w
    WHERE to_regclass(w.table_name) IS NOT NULL
      AND w.table_name <> ALL (v_unprivileged)
      AND NOT pipeline._replica_writes_captured(w.table_name)
      AND NOT EXISTS (SELECT FROM pg_subscription_rel AS sr WHERE sr.srrelid = to_regclass(w.table_name));
END;
$$;

COMMENT ON FUNCTION pipeline.install_change_capture() IS
    'Creates the triggers that queue source changes for incremental runs; lists what stands in their way '
    '(full_runs: every run is full until fixed). Run by migrate.';
