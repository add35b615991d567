-- The columns on which change capture compares an UPDATE's old and new rows (_capture_changes),
-- as a select list: those of the table a run reads (_source_columns, and every date or
-- timestamp column of patient_journey, which a milestone may name), so that a statement that
-- changes none of them (an application's "touch" of every row) queues nothing. Text columns are compared byte for
-- byte (COLLATE "C"): a nondeterministic collation of the tables' owner could call two
-- different slugs equal. NULL when one of them is missing or lacks the built-in type it must
-- have, whose comparison could run the owner's operator: the caller then queues every key.
-- Called by a capture trigger on application writes: its search_path leaves schema pipeline out.
CREATE OR REPLACE FUNCTION pipeline._compared_columns(p_table regclass)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (WITH wanted AS (
        SELECT s.column_name, pipeline._column_has_kind(p_table, s.column_name, s.kind) AS fits,
               s.kind = 'text' AS bytewise
        FROM pipeline._source_columns() AS s
        WHERE to_regclass(s.table_name) = p_table
        UNION
        -- every column a milestone could read a date from: of type date or timestamp, exactly
        -- (pipeline._milestone_date_columns), whether pipeline.milestone names it yet or not. A
        -- milestone pointed at it while this statement's transaction is open (committed first,
        -- and a run in between) must not find the statement's new dates unqueued.
        SELECT att.attname::text, true, false
        FROM pg_attribute AS att
        WHERE p_table = to_regclass('public.patient_journey') AND att.attrelid = p_table
          AND att.attnum > 0 AND NOT att.attisdropped
          AND att.atttypid IN ('date'::regtype, 'timestamp'::regtype)
    )
    SELECT CASE WHEN bool_and(w.fits)
                THEN string_agg(format(CASE WHEN w.bytewise THEN '%I COLLATE "C"' ELSE '%I' END, w.column_name),
                                ', ' ORDER BY w.column_name)
           END
    FROM wanted AS w);
END;
$$;

COMMENT ON FUNCTION pipeline._compared_columns(regclass) IS
    'The select list of the columns a run reads of a source table (text ones COLLATE "C"), on which change capture '
    'compares an UPDATE''s rows; NULL when one lacks its built-in type.';
