-- (Re)create the change-capture triggers on every watched table that exists; returns the
-- tables it could not watch (missing, or no TRIGGER privilege). Safe to repeat.
-- A trigger with transition tables may fire on one event only, hence one trigger per event.
CREATE OR REPLACE FUNCTION pipeline.install_change_capture()
RETURNS TABLE (table_name text, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_watch record;
    v_target regclass;
BEGIN
    FOR v_watch IN SELECT * FROM pipeline._change_capture_tables() LOOP
        v_target := to_regclass(v_watch.table_name);
        table_name := v_watch.table_name;
        IF v_target IS NULL THEN
            problem := 'table does not exist; runs stay full until it does and migrate runs again';
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_truncate AFTER TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes(%L)',
                           v_target, 'full');
            IF v_watch.kind = 'full' THEN
                EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_changes '
                               'AFTER INSERT OR UPDATE OR DELETE ON %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION pipeline._capture_changes(%L)',
                               v_target, 'full');
            ELSE
                EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_insert AFTER INSERT ON %s '
                               'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT '
                               'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                               v_target, v_watch.kind, v_watch.key_column);
                EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_update AFTER UPDATE ON %s '
                               'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                               'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                               v_target, v_watch.kind, v_watch.key_column);
                EXECUTE format('CREATE OR REPLACE TRIGGER pipeline_capture_delete AFTER DELETE ON %s '
                               'REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT '
                               'EXECUTE FUNCTION pipeline._capture_changes(%L, %L)',
                               v_target, v_watch.kind, v_watch.key_column);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            problem := format('no right to create triggers: GRANT TRIGGER ON %s TO %I', v_target, current_user);
            RETURN NEXT;
            CONTINUE;
        END;
        -- Fire also for writers in session_replication_role = replica (logical replication,
        -- pg_restore --disable-triggers); that needs the table's owner.
        BEGIN
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_truncate', v_target);
            IF v_watch.kind = 'full' THEN
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_changes', v_target);
            ELSE
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_insert', v_target);
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_update', v_target);
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_delete', v_target);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            problem := format('not its owner, so changes made under session_replication_role = replica '
                              'are not captured: the owner can run ALTER TABLE %s ENABLE ALWAYS TRIGGER ...',
                              v_target);
            RETURN NEXT;
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline.install_change_capture() IS
    'Creates the triggers that queue source changes for incremental runs; lists the tables it could not watch. Run by migrate.';
