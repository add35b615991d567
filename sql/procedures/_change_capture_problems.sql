-- Why the change queue may lack changes, per watched table: it is missing; a statement-level
-- capture trigger is missing, disabled, or not the one migrate installs (same name, other
-- function, events, level, timing, arguments or transition tables); or a subscription
-- replicates into it while the apply worker fires no capture trigger there (it fires row-level
-- triggers enabled REPLICA or ALWAYS, and TRUNCATE triggers enabled ALWAYS, never the
-- statement-level ones ordinary writes fire); or writes to it can reach rows no trigger of it
-- sees (a child table or partition, a rule). Any row here makes every run full; migrate lists them.
CREATE OR REPLACE FUNCTION pipeline._change_capture_problems()
RETURNS TABLE (table_name text, problem text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT w.table_name, 'table does not exist; runs stay full until it does and migrate runs again'
    FROM pipeline._change_capture_tables() AS w
    WHERE to_regclass(w.table_name) IS NULL
    UNION ALL
    SELECT t.table_name,
           CASE WHEN NOT t.found THEN format('trigger %s is missing (migrate re-creates it)', t.trigger_name)
                WHEN NOT t.as_installed
                    THEN format('trigger %s is not the one migrate installs (its function, events, level, timing, '
                                'arguments or transition tables differ; migrate re-creates it)', t.trigger_name)
                ELSE format('trigger %s is disabled (migrate enables it again)', t.trigger_name) END
    FROM pipeline._capture_triggers() AS t
    WHERE to_regclass(t.table_name) IS NOT NULL
      AND t.purpose <> 'replica'  -- it matters only where a subscription replicates: below
      AND NOT (t.found AND t.as_installed AND t.enabled IN ('O', 'A'))
    UNION ALL
    SELECT w.table_name,
           format('a subscription replicates into it, and the apply worker fires no capture trigger there: '
                  'its owner can run ALTER TABLE %s ENABLE ALWAYS TRIGGER pipeline_capture_truncate, '
                  'ENABLE REPLICA TRIGGER pipeline_capture_replica', w.table_name)
    FROM pipeline._change_capture_tables() AS w
    WHERE EXISTS (SELECT FROM pg_subscription_rel AS sr WHERE sr.srrelid = to_regclass(w.table_name))
      AND NOT pipeline._replica_writes_captured(w.table_name)
    UNION ALL
    -- Writes made straight into a child table or partition fire no trigger of the parent, and a
    -- rule can rewrite a write so that the table's own triggers never fire.
    SELECT w.table_name,
           format('it has child tables or partitions (%s), whose writes fire no capture trigger of it: every run '
                  'is full while it has them', string_agg(i.inhrelid::regclass::text, ', ' ORDER BY 1))
    FROM pipeline._change_capture_tables() AS w
    JOIN pg_catalog.pg_inherits AS i ON i.inhparent = to_regclass(w.table_name)
    GROUP BY w.table_name
    UNION ALL
    SELECT w.table_name,
           format('rule %s rewrites writes to it, which then may fire no capture trigger: every run is full '
                  'until its owner drops the rule', string_agg(quote_ident(r.rulename), ', ' ORDER BY 1))
    FROM pipeline._change_capture_tables() AS w
    JOIN pg_catalog.pg_rewrite AS r ON r.ev_class = to_regclass(w.table_name) AND r.ev_type IN ('2', '3', '4')
    GROUP BY w.table_name;
END;
$$;

COMMENT ON FUNCTION pipeline._change_capture_problems() IS
    'Why change capture may miss changes to a watched table (any row makes runs full); empty when it cannot.';
