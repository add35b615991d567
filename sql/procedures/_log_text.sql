-- A text for a log line (pipeline.failure_log_line): a JSON string, cut to p_max characters,
-- with every character that could end the line, forge another one or act on a terminal
-- written as an escape: C0 controls as JSON writes them (\n, \u001b), and DEL, C1 controls,
-- every format character (Cf: bidi U+202E, U+0600), line separators (U+2028) and invisible
-- fillers and variation selectors (U+3164, U+FE0F) as \uXXXX, so a JSON or logfmt reader gets
-- the text back; those outside the BMP (tags U+E0000.., U+1D173) become U+FFFD. NULL stays NULL.
-- The texts come from the source tables' owner and from error messages.
-- PL/pgSQL, as failure_log_line: its plan is made once a session, where a SQL function that
-- cannot be inlined (it pins search_path) is planned again at each call, a line at a time.
-- Its backslashes are in E'' strings: a session with standard_conforming_strings = off (the
-- CLI's, say, as a role or database sets it) reads them the same.
CREATE OR REPLACE FUNCTION pipeline._log_text(p_text text, p_max integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT CASE
        WHEN q.v !~ E'[\\u007f-\\u009f\\u00ad\\u034f\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff9-\\ufffb\\U000110bd\\U000110cd\\U00013430-\\U0001343f\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff]'
            THEN q.v
        ELSE (SELECT string_agg(CASE
                    WHEN c.ch ~ E'[\\U000110bd\\U000110cd\\U00013430-\\U0001343f\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0000-\\U000e0fff]'
                        THEN E'\\ufffd'
                    WHEN c.ch ~ E'[\\u007f-\\u009f\\u00ad\\u034f\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\u3164\\ufe00-\\ufe0f\\ufeff\\uffa0\\ufff9-\\ufffb]'
                        THEN E'\\u' || lpad(to_hex(ascii(c.ch)), 4, '0')
                    ELSE c.ch END, '' ORDER BY c.n)
              FROM regexp_split_to_table(q.v, '') WITH ORDINALITY AS c(ch, n))
    END
    FROM (SELECT to_json(CASE WHEN length(p_text) > p_max THEN left(p_text, p_max - 3) || '...'
                              ELSE p_text END)::text AS v) AS q);
END;
$$;

REVOKE ALL ON FUNCTION pipeline._log_text(text, integer) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._log_text(text, integer) IS
    'A text for a log line: a JSON string cut to p_max characters, line breaks, controls and bidi or invisible '
    'format characters written as JSON escapes, so it can neither end the line nor act on a terminal.';
