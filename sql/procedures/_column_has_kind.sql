-- Whether a column's type is, through any domains over it, a built-in type of the kind given
-- (pipeline._type_has_kind says which), so that reading the column runs no one's code. False
-- for a missing column. Reads only the catalog, as this transaction's snapshot sees it: under
-- REPEATABLE READ, a column retyped since the transaction began is seen with its old type, so
-- change capture, which reads keys in the application's transactions, asks its values' type
-- (pg_typeof) instead.
CREATE OR REPLACE FUNCTION pipeline._column_has_kind(p_table regclass, p_column text, p_kind text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type oid;
BEGIN
    SELECT a.atttypid INTO v_type
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN pipeline._type_has_kind(v_type, p_kind);
END;
$$;

COMMENT ON FUNCTION pipeline._column_has_kind(regclass, text, text) IS
    'True when the column''s type is (through domains) a built-in integer, text or timestamptz type, whose conversions run no one''s code.';
