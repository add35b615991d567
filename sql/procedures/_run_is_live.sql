-- Whether the run marked running with this backend pid is still going on in another session:
-- that session holds the run's own lock exclusively, and is inside a transaction (a run is, from
-- its first statement to its last: a procedure starts the next transaction as it commits). A
-- session that holds the lock while idle outside any transaction is not running the pipeline:
-- its run's last COMMIT failed, or the steps were called by hand. Checked a few times, 10 ms
-- apart, so that a run caught between two of its transactions is not taken for idle.
CREATE OR REPLACE FUNCTION pipeline._run_is_live(p_run_id bigint, p_pid integer)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    IF p_pid = pg_backend_pid()
       OR NOT EXISTS (SELECT FROM pipeline._run_locks(p_run_id) AS l
                      WHERE l.pid = p_pid AND l.mode = 'ExclusiveLock') THEN
        RETURN false;
    END IF;
    FOR i IN 1 .. 3 LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_locks AS v
                   WHERE v.locktype = 'virtualxid' AND v.pid = p_pid AND v.granted) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END;
$$;

COMMENT ON FUNCTION pipeline._run_is_live(bigint, integer) IS
    'True when another session (p_pid) holds the run''s own lock exclusively and is inside a transaction.';
