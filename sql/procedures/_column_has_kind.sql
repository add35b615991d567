-- Whether a column's type is, through any domains over it, a built-in type of the kind given:
-- integer (int2, int4, int8), text (text, varchar, char) or timestamptz (timestamptz only: a
-- timestamp without time zone would take its meaning from the session's TimeZone). Their casts and comparisons are the
-- catalog's own, so reading the column runs no one's code; a domain's CHECK runs only on writes.
-- False for a missing column. Reads only the catalog.
CREATE OR REPLACE FUNCTION pipeline._column_has_kind(p_table regclass, p_column text, p_kind text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE type_chain (type_oid, base_oid) AS (
        SELECT t.oid, t.typbasetype
        FROM pg_catalog.pg_attribute AS a
        JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
        WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT t.oid, t.typbasetype
        FROM type_chain AS c JOIN pg_catalog.pg_type AS t ON t.oid = c.base_oid
        WHERE c.base_oid <> 0
    )
    SELECT coalesce(bool_or(c.type_oid = ANY (CASE p_kind
                                WHEN 'integer' THEN ARRAY['int2'::regtype, 'int4'::regtype, 'int8'::regtype]::oid[]
                                WHEN 'text' THEN ARRAY['text'::regtype, 'varchar'::regtype, 'bpchar'::regtype]::oid[]
                                WHEN 'timestamptz' THEN ARRAY['timestamptz'::regtype]::oid[]
                            END)), false)
    FROM type_chain AS c
    WHERE c.base_oid = 0
$$;

COMMENT ON FUNCTION pipeline._column_has_kind(regclass, text, text) IS
    'True when the column''s type is (through domains) a built-in integer, text or timestamptz type, whose conversions run no one''s code.';
