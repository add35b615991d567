-- Quote a slug for an error message: short, printable, NULL spelled out.
CREATE OR REPLACE FUNCTION pipeline._slug_for_message(p_slug text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_slug IS NULL THEN 'NULL'
        ELSE '"' || regexp_replace(
            CASE WHEN length(p_slug) > 60 THEN left(p_slug, 57) || '...' ELSE p_slug END,
            '[^[:print:]]', '?', 'g'
        ) || '"'
    END
$$;

COMMENT ON FUNCTION pipeline._slug_for_message(text) IS
    'Slug as shown in error messages: quoted, cut to 60 characters, control characters as ?.';
