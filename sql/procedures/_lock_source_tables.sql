-- Lock the source tables (ACCESS SHARE, the reads' own lock) before they are checked, so that
-- none can be swapped (for a view, say) between the check and the reads: a run and
-- pipeline.preview_run() both call it first. A materialized view cannot be locked this way; the
-- check that follows refuses it by name.
CREATE OR REPLACE FUNCTION pipeline._lock_source_tables()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_table regclass;
BEGIN
    FOR v_table IN SELECT to_regclass(t.table_name) FROM pipeline._change_capture_tables() AS t
                   WHERE t.table_name LIKE 'public.%' AND to_regclass(t.table_name) IS NOT NULL LOOP
        BEGIN
            EXECUTE format('LOCK TABLE %s IN ACCESS SHARE MODE', v_table);
        EXCEPTION
            WHEN wrong_object_type THEN
                NULL;
            WHEN lock_not_available THEN  -- a run's lock_timeout: say who holds the table
                PERFORM pipeline._raise_lock_timeout(v_table, 'ACCESS SHARE');
        END;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION pipeline._lock_source_tables() IS
    'Takes ACCESS SHARE on every source table, so that none changes kind between its check and its reads.';
