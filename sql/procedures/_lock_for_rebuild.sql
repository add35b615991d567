-- Before a run empties a table of its own or drops and rebuilds its key: take the exclusive
-- lock that needs at once, or not at all, so that a reader of the table (a dump, a DBA in an
-- open transaction) is never waited for; the caller then takes the way that blocks no reader.
-- With the lock, the key is rebuilt in the tablespace it is in now, whatever
-- default_tablespace says. Both last until the run's transaction ends.
CREATE OR REPLACE FUNCTION pipeline._lock_for_rebuild(p_tables regclass[], p_key regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT',
                   (SELECT string_agg(t::text, ', ') FROM unnest(p_tables) AS t));
    PERFORM set_config('default_tablespace', coalesce(s.spcname, ''), true)
    FROM pg_class AS i LEFT JOIN pg_tablespace AS s ON s.oid = i.reltablespace
    WHERE i.oid = p_key;
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    RETURN false;
END;
$$;

COMMENT ON FUNCTION pipeline._lock_for_rebuild(regclass[], regclass) IS
    'Locks the tables exclusively if no one holds a lock on them (else returns false) and sets '
    'default_tablespace to the key''s, for the rest of the transaction.';
