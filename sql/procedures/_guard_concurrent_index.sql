-- The function of event trigger pipeline_source_guard_start, which `python -m pytools guard`
-- installs beside pipeline_source_guard, at ddl_command_start of CREATE INDEX. CREATE INDEX
-- CONCURRENTLY commits its index, invalid, in a first transaction of its own, long before its
-- end; cancelled after that (a statement_timeout in its last wait), it fires no
-- ddl_command_end, so pipeline_source_guard never sees the index, and REINDEX (which fires no
-- event trigger in PostgreSQL 15, and whose SHARE lock a run's ACCESS SHARE does not keep out)
-- can make it valid while a run is between its check and its reads: planning them would then
-- run the index's code with pipeline_owner's rights. So such a command takes the lock a run
-- holds from its check to the end of its reads, in that first transaction: it waits for a run's
-- reads, and a run that checks later sees its index. Only CONCURRENTLY needs it (a plain CREATE
-- INDEX commits its index with its ddl_command_end); the command's text is all ddl_command_start
-- offers, and the keyword must be in it to take effect, so matching it misses no such command.
-- This fires before PostgreSQL checks the command (its privileges, or that CONCURRENTLY is not
-- in a transaction block, where the failed command's transaction would keep the lock while its
-- session idles): so only a session whose login role may act as the owner of a source relation
-- takes it, the one that could index one; a role that can only connect never does. (session_user:
-- here current_user is this function's owner; CONCURRENTLY cannot run inside a function, so the
-- command's role is one the session's login role may SET ROLE to.)
CREATE OR REPLACE FUNCTION pipeline._guard_concurrent_index()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_query() ~* 'concurrently'
       AND EXISTS (SELECT FROM pipeline._source_relations() AS s
                   JOIN pg_catalog.pg_class AS r ON r.oid = s.relation
                   WHERE pg_catalog.pg_has_role(session_user, r.relowner, 'MEMBER')) THEN
        LOCK TABLE pipeline.source_guard_lock IN ROW EXCLUSIVE MODE;
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION pipeline._guard_concurrent_index() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._guard_concurrent_index() IS
    'Event trigger function: CREATE INDEX CONCURRENTLY waits for a run''s reads before it commits its invalid index.';
