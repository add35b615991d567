-- The function of event trigger pipeline_source_guard, which a superuser installs
-- (`python -m pytools guard`) to fire at the end of every DDL command (the relations it touched
-- decide; a command may spell the same change several ways: ALTER FOREIGN TABLE ... INHERIT,
-- CREATE SCHEMA ... CREATE TABLE). A run locks the source tables in
-- ACCESS SHARE mode before it checks them: that blocks what needs ACCESS EXCLUSIVE (a policy,
-- RLS, a CHECK constraint, a swap for a view) until the reads are done, but not a new index or
-- statistics object, nor a new child or partition (SHARE and SHARE UPDATE EXCLUSIVE locks).
-- One made between a run's check and its reads would be planned, and the functions in it run,
-- with pipeline_owner's rights. So the command is refused, and rolls back unseen, when it gives
-- a source relation something pipeline._check_source_tables refuses: whether a run is under way
-- or not, since a run may start at any moment. CREATE INDEX CONCURRENTLY commits its index
-- before this fires: refused, the index stays invalid, which the planner never reads and every
-- run's check refuses by name. SECURITY DEFINER: the role running the command needs no rights
-- on schema pipeline; this reads only the catalog.
CREATE OR REPLACE FUNCTION pipeline._guard_source_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_touched regclass[];
    v_found record;
BEGIN
    -- the tables the command created or altered: an index's or statistics object's own table
    SELECT array_agg(DISTINCT coalesce(x.indrelid, st.stxrelid, c.objid)::regclass) INTO v_touched
    FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
    LEFT JOIN pg_catalog.pg_index AS x
      ON c.classid = 'pg_catalog.pg_class'::regclass AND x.indexrelid = c.objid
    LEFT JOIN pg_catalog.pg_statistic_ext AS st
      ON c.classid = 'pg_catalog.pg_statistic_ext'::regclass AND st.oid = c.objid
    WHERE c.classid IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_statistic_ext'::regclass);
    -- A schema renamed (public away, or another schema to public) changes which tables the
    -- source tables are without touching any: wait for a run's reads, then check them all.
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
               WHERE c.classid = 'pg_catalog.pg_namespace'::regclass AND c.command_tag = 'ALTER SCHEMA') THEN
        LOCK TABLE pipeline.source_guard_lock IN ROW EXCLUSIVE MODE;
        BEGIN
            SELECT array_agg(s.relation) INTO v_touched FROM pipeline._source_relations() AS s;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'refused by the patient-journey pipeline: after this command, schema public would be '
                            'one whose tables % may not read; rename the schemas back', current_user
                USING ERRCODE = 'insufficient_privilege';
        END;
    ELSE
        -- The common case, cheaply (a run's own temporary tables, say): a table a run reads is
        -- in schema public (a source table) or a child of another table, and never another
        -- session's temporary table (even a temporary child of a source table). Only a read
        -- committed transaction (read uncommitted is the same in PostgreSQL) can tell: under
        -- repeatable read or serializable these reads see the snapshot of its start, which may
        -- predate the table's being made a child, or the table itself (another session's work
        -- since), so there only temporary tables pass without the lock.
        IF v_touched IS NULL THEN
            RETURN;
        END IF;
        IF current_setting('transaction_isolation') IN ('read committed', 'read uncommitted') THEN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_class AS r
                           WHERE r.oid = ANY (v_touched) AND r.relpersistence <> 't'
                             AND (r.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                                                    WHERE n.nspname = 'public')
                                  OR EXISTS (SELECT FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = r.oid))) THEN
                RETURN;
            END IF;
        ELSIF (SELECT count(*) FROM pg_catalog.pg_class AS r
               WHERE r.oid = ANY (v_touched) AND r.relpersistence = 't') = cardinality(v_touched) THEN
            RETURN;
        END IF;
        -- Wait for a run between its check and the end of its reads, and keep the next from
        -- checking until this transaction ends: this command cannot see another's uncommitted
        -- one (an index on a grandchild, say, while another links its parent in), and the two
        -- together may plant what neither alone would; the run that checks after both sees them.
        LOCK TABLE pipeline.source_guard_lock IN ROW EXCLUSIVE MODE;
        -- ... and what a run reads of them: those among the source relations, with what lies below
        WITH RECURSIVE below AS (
            SELECT t.relation FROM unnest(v_touched) AS t (relation)
            UNION
            SELECT i.inhrelid::regclass FROM below AS b JOIN pg_catalog.pg_inherits AS i ON i.inhparent = b.relation
        )
        SELECT array_agg(s.relation) INTO v_touched
        FROM pipeline._source_relations() AS s WHERE s.relation IN (SELECT b.relation FROM below AS b);
    END IF;
    IF v_touched IS NULL THEN
        RETURN;
    END IF;
    FOR v_found IN
        SELECT s.relation::text AS name, s.reached_from,
               CASE r.relkind WHEN 'f' THEN 'foreign table' ELSE 'relation of kind ' || r.relkind::text END AS kind
        FROM pipeline._source_relations() AS s JOIN pg_catalog.pg_class AS r ON r.oid = s.relation
        WHERE s.relation = ANY (v_touched) AND r.relkind NOT IN ('r', 'p')
        ORDER BY 1
    LOOP
        RAISE EXCEPTION 'refused by the patient-journey pipeline: % would be read as part of source table % but is a '
                        '%, whose code a run would run with the rights of %; make it a plain table',
                        v_found.name, v_found.reached_from, v_found.kind, current_user
            USING ERRCODE = 'insufficient_privilege';
    END LOOP;
    FOR v_found IN
        SELECT c.relation::text AS name, c.what, c.called, c.called_owner
        FROM pipeline._source_relations_planned_calls() AS c
        WHERE c.relation = ANY (v_touched)
        ORDER BY 1, 2
    LOOP
        RAISE EXCEPTION 'refused by the patient-journey pipeline: source table %: its % would use %, of role %, '
                        'whose code a run planning a read would run with the rights of %; leave it out, or have '
                        'a superuser own the %', v_found.name, v_found.what, v_found.called, v_found.called_owner,
                        current_user, split_part(v_found.called, ' ', 1)
            USING ERRCODE = 'insufficient_privilege';
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION pipeline._guard_source_tables() FROM PUBLIC;

COMMENT ON FUNCTION pipeline._guard_source_tables() IS
    'Event trigger function: refuses DDL that gives a source relation an index, statistics object, constraint or '
    'child whose code a run would run with pipeline_owner''s rights.';
