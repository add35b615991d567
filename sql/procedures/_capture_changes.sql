-- Statement-level trigger on the source tables: queue the keys a statement touched, one
-- queue row per statement (an array), so bulk writes pay one insert, not one per row.
-- TG_ARGV[0] = kind of key, TG_ARGV[1] = column holding it. TRUNCATE, or kind full, queues a full run.
-- SECURITY DEFINER: the application's roles need no rights on the pipeline schema.
CREATE OR REPLACE FUNCTION pipeline._capture_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Not pipeline: it runs on every application write, so no function a role may have put in
-- schema pipeline can stand in for the catalog's here; what it names of ours is qualified.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_change_id bigint;
    v_keys integer;
    v_compared text;
BEGIN
    BEGIN
    -- A key column whose type is not the catalog's integer could carry a cast of the tables'
    -- owner, which array_agg into bigint[] would run with the pipeline owner's rights: such a
    -- column is never read; a full run is asked for, and refuses it, naming it.
    IF TG_OP = 'TRUNCATE' OR TG_ARGV[0] = 'full'
       OR NOT pipeline._column_has_kind(TG_RELID, TG_ARGV[1], 'integer') THEN
        INSERT INTO pipeline.change_queue (kind) VALUES ('full');
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO pipeline.change_queue (kind, keys) '
                       'SELECT %L, array_agg(%I) FROM new_rows HAVING count(%2$I) > 0',
                       TG_ARGV[0], TG_ARGV[1]);
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO pipeline.change_queue (kind, keys) '
                       'SELECT %L, array_agg(%I) FROM old_rows HAVING count(%2$I) > 0',
                       TG_ARGV[0], TG_ARGV[1]);
    ELSE
        EXECUTE format('INSERT INTO pipeline.change_queue (kind, keys) '
                       'SELECT %L, array_agg(k) FROM (SELECT %I AS k FROM old_rows '
                       'UNION ALL SELECT %2$I FROM new_rows) AS touched HAVING count(k) > 0 '
                       'RETURNING change_id, cardinality(keys)',
                       TG_ARGV[0], TG_ARGV[1]) INTO v_change_id, v_keys;
        -- A statement of many rows (an application's "touch" of every row) keeps only the keys
        -- of the rows whose compared columns, the ones a run reads, changed (old and new key):
        -- one that rewrites every row with the same values queues nothing. A few rows stay
        -- queued as they are: they cost the next run little, and comparing them would cost
        -- every small write of the application more.
        IF v_keys > 2000 THEN
            v_compared := pipeline._compared_columns(TG_RELID);
            IF v_compared IS NOT NULL THEN
                DELETE FROM pipeline.change_queue AS q WHERE q.change_id = v_change_id;
                EXECUTE format('INSERT INTO pipeline.change_queue (kind, keys) '
                               'SELECT %L, array_agg(k) FROM ('
                               'SELECT t.%I AS k FROM (SELECT %s FROM old_rows EXCEPT ALL SELECT %3$s FROM new_rows) AS t '
                               'UNION ALL '
                               'SELECT t.%2$I FROM (SELECT %3$s FROM new_rows EXCEPT ALL SELECT %3$s FROM old_rows) AS t'
                               ') AS touched HAVING count(k) > 0',
                               TG_ARGV[0], TG_ARGV[1], v_compared);
            END IF;
        END IF;
    END IF;
    EXCEPTION WHEN OTHERS THEN
        -- Never break the application's statement (e.g. a renamed key column): fall back to
        -- asking for a full run, which needs no keys.
        INSERT INTO pipeline.change_queue (kind) VALUES ('full');
    END;
    RETURN NULL;
END;
$$;

-- Fired by triggers only; nobody needs to attach it to tables of their own.
REVOKE ALL ON FUNCTION pipeline._capture_changes() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._capture_changes() IS
    'Trigger: queues the keys each statement on a source table touched (pipeline.change_queue).';
