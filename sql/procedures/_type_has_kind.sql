-- Whether a type is, through any domains over it, a built-in type of the kind given: integer
-- (int2, int4, int8), text (text, varchar, char) or timestamptz (timestamptz only: a timestamp
-- without time zone would take its meaning from the session's TimeZone). Their casts and
-- comparisons are the catalog's own, so converting a value runs no one's code; a domain's
-- CHECK runs only on writes. False for NULL, or for a type this transaction's snapshot cannot
-- see (a domain created since it began): what cannot be checked is not trusted.
CREATE OR REPLACE FUNCTION pipeline._type_has_kind(p_type oid, p_kind text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type oid := p_type;
    v_kinds oid[] := CASE p_kind
                         WHEN 'integer' THEN ARRAY['int2'::regtype, 'int4'::regtype, 'int8'::regtype]::oid[]
                         WHEN 'text' THEN ARRAY['text'::regtype, 'varchar'::regtype, 'bpchar'::regtype]::oid[]
                         WHEN 'timestamptz' THEN ARRAY['timestamptz'::regtype]::oid[]
                     END;
BEGIN
    -- a domain's base type is fixed when it is created, so its chain cannot change under us
    WHILE v_type IS NOT NULL AND NOT v_type = ANY (v_kinds) LOOP
        SELECT nullif(t.typbasetype, 0) INTO v_type FROM pg_catalog.pg_type AS t WHERE t.oid = v_type;
    END LOOP;
    RETURN coalesce(v_type = ANY (v_kinds), false);
END;
$$;

COMMENT ON FUNCTION pipeline._type_has_kind(oid, text) IS
    'True when the type is (through domains) a built-in integer, text or timestamptz type, whose conversions run no one''s code.';
