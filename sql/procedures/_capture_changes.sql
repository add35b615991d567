-- Statement-level trigger on the source tables: queue the keys a statement touched, one
-- queue row per statement (an array), so bulk writes pay one insert, not one per row.
-- TG_ARGV[0] = kind of key, TG_ARGV[1] = column holding it. TRUNCATE, or kind full, queues a full run.
-- SECURITY DEFINER: the application's roles need no rights on the pipeline schema.
-- It runs on every application statement, so its common path is what a single-row write
-- costs (issue 12): static SQL per key column (planned once per session and trigger, where an
-- EXECUTE was planned again at each statement), no EXCEPTION block around its INSERT (the
-- subtransaction would take an id of its own; the one around the type check below writes
-- nothing, so it takes none) and one INSERT. What could make that INSERT fail is ruled
-- out before it: a key column that is missing or not of a built-in integer type queues a full
-- run instead. The key's type is checked at each statement: the tables' owner can change it at
-- any time, and a key of the owner's type is never converted (its cast to bigint would run the
-- owner's code with the pipeline owner's rights).
CREATE OR REPLACE FUNCTION pipeline._capture_changes()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Not pipeline: it runs on every application write, so no function a role may have put in
-- schema pipeline can stand in for the catalog's here; what it names of ours is qualified.
SET search_path = pg_catalog, pg_temp
AS $$
-- A column of the source table may have any name (tg_argv, v_keys): where one matches a
-- variable of this function, the variable is meant, not the column.
#variable_conflict use_variable
DECLARE
    v_type oid;
    v_touched boolean := false;
    v_keys integer;
    v_queued tid;
    v_compared text;
BEGIN
    IF TG_OP = 'TRUNCATE' OR TG_ARGV[0] = 'full' THEN
        INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        RETURN NULL;
    END IF;
    -- The key's type as the statement's rows have it (pg_typeof converts nothing), not as the
    -- catalog says: under REPEATABLE READ or SERIALIZABLE the catalog is read as of the
    -- transaction's start, while the rows, and the INSERT below, have the column's type now
    -- (retyped meanwhile to the owner's type, whose cast to bigint would run its code here).
    -- This block writes nothing, so it assigns no subtransaction id; a key column gone since
    -- the transaction began fails in it and asks for a full run.
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF TG_ARGV[1] = 'id' THEN
                SELECT pg_typeof(o.id)::oid INTO v_type FROM old_rows AS o LIMIT 1;
            ELSIF TG_ARGV[1] = 'patient_journey_id' THEN
                SELECT pg_typeof(o.patient_journey_id)::oid INTO v_type FROM old_rows AS o LIMIT 1;
            ELSIF TG_ARGV[1] = 'journey_id' THEN
                SELECT pg_typeof(o.journey_id)::oid INTO v_type FROM old_rows AS o LIMIT 1;
            ELSE
                RAISE EXCEPTION 'no branch for key column %', TG_ARGV[1];
            END IF;
        ELSIF TG_ARGV[1] = 'id' THEN
            SELECT pg_typeof(n.id)::oid INTO v_type FROM new_rows AS n LIMIT 1;
        ELSIF TG_ARGV[1] = 'patient_journey_id' THEN
            SELECT pg_typeof(n.patient_journey_id)::oid INTO v_type FROM new_rows AS n LIMIT 1;
        ELSIF TG_ARGV[1] = 'journey_id' THEN
            SELECT pg_typeof(n.journey_id)::oid INTO v_type FROM new_rows AS n LIMIT 1;
        ELSE
            RAISE EXCEPTION 'no branch for key column %', TG_ARGV[1];
        END IF;
        v_touched := FOUND;
    EXCEPTION WHEN OTHERS THEN
        v_touched := true;  -- not knowing is never taken for nothing written
        v_type := NULL;
    END;
    IF NOT v_touched THEN
        RETURN NULL;  -- no row written: nothing to queue
    END IF;
    IF v_type IS NULL
       OR (v_type NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
           AND NOT pipeline._type_has_kind(v_type, 'integer')) THEN
        INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        RETURN NULL;
    END IF;

    -- One branch per key column of pipeline._change_capture_tables. plpgsql_check checks each
    -- against every table the trigger is on (tests/sql/test_static_checks.py): a branch naming
    -- a column the table lacks is never taken there.
    IF TG_OP = 'INSERT' THEN
        IF TG_ARGV[1] = 'id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(n.id) FROM new_rows AS n HAVING count(n.id) > 0;
        ELSIF TG_ARGV[1] = 'patient_journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(n.patient_journey_id) FROM new_rows AS n
            HAVING count(n.patient_journey_id) > 0;
        ELSIF TG_ARGV[1] = 'journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(n.journey_id) FROM new_rows AS n HAVING count(n.journey_id) > 0;
        ELSE
            INSERT INTO pipeline.change_queue (kind) VALUES ('full');  -- a key column with no branch yet
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF TG_ARGV[1] = 'id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(o.id) FROM old_rows AS o HAVING count(o.id) > 0;
        ELSIF TG_ARGV[1] = 'patient_journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(o.patient_journey_id) FROM old_rows AS o
            HAVING count(o.patient_journey_id) > 0;
        ELSIF TG_ARGV[1] = 'journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(o.journey_id) FROM old_rows AS o HAVING count(o.journey_id) > 0;
        ELSE
            INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        END IF;
    ELSE
        -- an UPDATE: the old key and the new one
        IF TG_ARGV[1] = 'id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(t.k)
            FROM (SELECT o.id AS k FROM old_rows AS o UNION ALL SELECT n.id FROM new_rows AS n) AS t
            HAVING count(t.k) > 0
            RETURNING cardinality(keys), ctid INTO v_keys, v_queued;
        ELSIF TG_ARGV[1] = 'patient_journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(t.k)
            FROM (SELECT o.patient_journey_id AS k FROM old_rows AS o
                  UNION ALL SELECT n.patient_journey_id FROM new_rows AS n) AS t
            HAVING count(t.k) > 0
            RETURNING cardinality(keys), ctid INTO v_keys, v_queued;
        ELSIF TG_ARGV[1] = 'journey_id' THEN
            INSERT INTO pipeline.change_queue (kind, keys)
            SELECT TG_ARGV[0], array_agg(t.k)
            FROM (SELECT o.journey_id AS k FROM old_rows AS o UNION ALL SELECT n.journey_id FROM new_rows AS n) AS t
            HAVING count(t.k) > 0
            RETURNING cardinality(keys), ctid INTO v_keys, v_queued;
        ELSE
            INSERT INTO pipeline.change_queue (kind) VALUES ('full');
        END IF;
        -- A statement of many rows (an application's "touch" of every row) keeps only the keys
        -- of the rows whose compared columns, the ones a run reads, changed (old and new key):
        -- one that rewrites every row with the same values queues nothing. A few rows stay
        -- queued as they are: they cost the next run little, and comparing them would cost
        -- every small write of the application more. Its SQL names the columns of the table, so
        -- it is built here; should it fail, every key stays queued, which is never wrong.
        -- Only under READ COMMITTED: there the catalog _compared_columns reads is current, while
        -- a transaction that began earlier could see a compared column with the type it had
        -- then, and compare the owner's type with its operators.
        IF v_keys > 2000 AND current_setting('transaction_isolation') = 'read committed' THEN
            v_compared := pipeline._compared_columns(TG_RELID);
            IF v_compared IS NOT NULL THEN
                BEGIN
                    DELETE FROM pipeline.change_queue AS q WHERE q.ctid = v_queued;
                    EXECUTE format('INSERT INTO pipeline.change_queue (kind, keys) '
                                   'SELECT %L, array_agg(k) FROM ('
                                   'SELECT t.%I AS k FROM (SELECT %s FROM old_rows EXCEPT ALL SELECT %3$s FROM new_rows) AS t '
                                   'UNION ALL '
                                   'SELECT t.%2$I FROM (SELECT %3$s FROM new_rows EXCEPT ALL SELECT %3$s FROM old_rows) AS t'
                                   ') AS touched HAVING count(k) > 0',
                                   TG_ARGV[0], TG_ARGV[1], v_compared);
                EXCEPTION WHEN OTHERS THEN
                    NULL;  -- the DELETE is undone with the rest: the statement's every key stays queued
                END;
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

-- Fired by triggers only; nobody needs to attach it to tables of their own.
REVOKE ALL ON FUNCTION pipeline._capture_changes() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._capture_changes() IS
    'Trigger: queues the keys each statement on a source table touched (pipeline.change_queue).';
