-- Whether a column's type is, through any domains over it, a built-in type of the kind given:
-- integer (int2, int4, int8), text (text, varchar, char) or timestamptz (timestamptz only: a
-- timestamp without time zone would take its meaning from the session's TimeZone). Their casts and comparisons are the
-- catalog's own, so reading the column runs no one's code; a domain's CHECK runs only on writes.
-- False for a missing column. Reads only the catalog.
-- PL/pgSQL, and a built-in type found at once, a domain followed down to its base: the capture
-- triggers ask it on every application statement, where a SQL function that pins search_path
-- (planned again at each call) with a recursive query cost 0.3 ms a statement.
CREATE OR REPLACE FUNCTION pipeline._column_has_kind(p_table regclass, p_column text, p_kind text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type oid;
    v_kinds oid[] := CASE p_kind
                         WHEN 'integer' THEN ARRAY['int2'::regtype, 'int4'::regtype, 'int8'::regtype]::oid[]
                         WHEN 'text' THEN ARRAY['text'::regtype, 'varchar'::regtype, 'bpchar'::regtype]::oid[]
                         WHEN 'timestamptz' THEN ARRAY['timestamptz'::regtype]::oid[]
                     END;
BEGIN
    SELECT a.atttypid INTO v_type
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    WHILE v_type IS NOT NULL AND NOT v_type = ANY (v_kinds) LOOP
        SELECT nullif(t.typbasetype, 0) INTO v_type FROM pg_catalog.pg_type AS t WHERE t.oid = v_type;
    END LOOP;
    RETURN coalesce(v_type = ANY (v_kinds), false);
END;
$$;

COMMENT ON FUNCTION pipeline._column_has_kind(regclass, text, text) IS
    'True when the column''s type is (through domains) a built-in integer, text or timestamptz type, whose conversions run no one''s code.';
