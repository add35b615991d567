-- The columns on which change capture compares an UPDATE's old and new rows (_capture_changes),
-- as a select list: those of the table a run reads (_source_columns, and the usable milestone
-- date columns of patient_journey), so that a statement that changes none of them (an
-- application's "touch" of every row) queues nothing. Text columns are compared byte for
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
        -- the milestone date columns a run reads: of type date or timestamp, exactly (as
        -- pipeline._milestone_date_columns has it, whose search_path a capture trigger avoids)
        SELECT m.date_column, true, false
        FROM pipeline.milestone AS m
        JOIN pg_attribute AS att ON att.attrelid = p_table AND att.attname = m.date_column
        WHERE p_table = to_regclass('public.patient_journey') AND att.attnum > 0 AND NOT att.attisdropped
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
