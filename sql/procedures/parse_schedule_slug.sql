-- Parse a schedule slug (slug-grammar.md) into its window offsets and canonical milestone.
-- Anything that does not parse raises SQLSTATE 22023 naming the slug and the reason.
CREATE OR REPLACE FUNCTION pipeline.parse_schedule_slug(p_slug text)
RETURNS TABLE (start_offset_days integer, end_offset_days integer, milestone_slug text)
LANGUAGE plpgsql
STABLE
PARALLEL UNSAFE  -- its exception block starts a subtransaction
ROWS 1
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_max_days constant integer := 36500;
    -- Unicode's White_Space characters, spelled out: [[:space:]] depends on the database's locale
    -- (libc's C.UTF-8 leaves out U+00A0, U+0085 and U+202F, ICU includes them). An E'' string,
    -- so that standard_conforming_strings cannot change it: the backslashes reach the regex.
    v_space constant text := E'[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
    v_slug text;
    v_tokens text[];
    v_token text;
    v_match text[];
    v_kinds text := '';          -- one letter per token: O offset, X offset+po, D d<N>, P pre, Q post, M milestone
    v_days numeric[] := '{}'::numeric[];  -- the numbers of O, X and D tokens, in order
    v_milestones text[] := '{}'::text[];
    v_milestone text;
    v_start numeric;
    v_end numeric;
    v_reason text;
    v_hint text;
    ex_message text;
BEGIN
    IF p_slug IS NULL OR p_slug ~ ('^' || v_space || '*$') THEN
        v_reason := 'it is NULL, empty or blank';
    ELSE
        -- COLLATE "C": fold ASCII letters only, whatever the database's locale (in a Turkish one
        -- lower('I') is a dotless i, and lower(U+0130) an ASCII i).
        v_slug := lower(regexp_replace(p_slug, format('^%1$s+|%1$s+$', v_space), '', 'g') COLLATE "C");
        v_tokens := string_to_array(v_slug, '-');
        IF v_slug = 'always' THEN
            RETURN QUERY SELECT NULL::integer, NULL::integer, NULL::text;
            RETURN;
        ELSIF cardinality(v_tokens) > 5 THEN
            v_reason := format('it has %s tokens; a slug has at most 5', cardinality(v_tokens));
        END IF;
    END IF;

    IF v_reason IS NULL THEN
        FOREACH v_token IN ARRAY v_tokens LOOP
            IF v_token = '' THEN
                v_reason := 'it has an empty token (a leading, trailing or doubled "-")';
            ELSIF v_token = 'pre' THEN
                v_kinds := v_kinds || 'P';
            ELSIF v_token = 'post' THEN
                v_kinds := v_kinds || 'Q';
            ELSIF v_token ~ '^[0-9]+[dwmy](po)?$' THEN
                v_match := regexp_match(v_token, '^0*([0-9]*)([dwmy])(po)?$');
                IF length(v_match[1]) > 6 THEN
                    v_reason := format('offset "%s" is beyond %s days', left(v_token, 20), v_max_days);
                ELSE
                    v_days := v_days || pipeline._offset_days(coalesce(nullif(v_match[1], ''), '0'), v_match[2]);
                    v_kinds := v_kinds || CASE WHEN v_match[3] IS NULL THEN 'O' ELSE 'X' END;
                END IF;
            ELSIF v_token ~ '^d[0-9]+$' THEN
                v_match := regexp_match(v_token, '^d0*([0-9]*)$');
                IF length(v_match[1]) > 6 THEN
                    v_reason := format('day "%s" is beyond %s days', left(v_token, 20), v_max_days);
                ELSE
                    v_days := v_days || coalesce(nullif(v_match[1], ''), '0')::numeric;
                    v_kinds := v_kinds || 'D';
                END IF;
            ELSIF v_token ~ '^[a-z]+$' THEN
                SELECT a.milestone_slug INTO v_milestone
                FROM pipeline.milestone_alias AS a
                WHERE a.alias = v_token;
                IF FOUND THEN
                    v_milestones := v_milestones || v_milestone;
                    v_kinds := v_kinds || 'M';
                ELSE
                    v_reason := format('unknown milestone alias "%s"', left(v_token, 40));
                    v_hint := format(
                        'Add it if it names a milestone: INSERT INTO pipeline.milestone_alias '
                        '(alias, milestone_slug) VALUES (%L, ''operation'');', left(v_token, 40));
                END IF;
            ELSE
                v_reason := format(
                    'token %s is not an offset (<N>d, <N>w, <N>m, <N>y), pre, post, d<N> or a milestone alias',
                    pipeline._slug_for_message(v_token));
            END IF;
            EXIT WHEN v_reason IS NOT NULL;
        END LOOP;
    END IF;

    IF v_reason IS NULL AND (SELECT count(DISTINCT m) FROM unnest(v_milestones) AS m) > 1 THEN
        v_reason := format('it names two different milestones (%s)', array_to_string(v_milestones, ', '));
    END IF;

    IF v_reason IS NULL AND EXISTS (SELECT FROM unnest(v_days) AS d WHERE d > v_max_days) THEN
        v_reason := format('an offset is beyond %s days (100 years)', v_max_days);
    END IF;

    IF v_reason IS NULL THEN
        v_milestone := v_milestones[1];
        CASE v_kinds
            WHEN 'OOPM' THEN v_start := -v_days[1]; v_end := -v_days[2];
            WHEN 'OOQM' THEN v_start := v_days[1];  v_end := v_days[2];
            WHEN 'OPM' THEN v_start := -v_days[1]; v_end := 0;
            WHEN 'OQM', 'OM' THEN v_start := v_days[1]; v_end := NULL;
            WHEN 'OPOQM' THEN v_start := -v_days[1]; v_end := v_days[2];
            WHEN 'OPX' THEN v_start := -v_days[1]; v_end := v_days[2]; v_milestone := 'operation';
            WHEN 'X' THEN v_start := v_days[1]; v_end := NULL; v_milestone := 'operation';
            WHEN 'MOQM', 'OMQM' THEN v_start := 0; v_end := v_days[1];
            WHEN 'MOPM', 'OMPM' THEN v_start := -v_days[1]; v_end := 0;
            WHEN 'PM' THEN v_start := NULL; v_end := 0;
            WHEN 'QM', 'M' THEN v_start := 0; v_end := NULL;
            WHEN 'MD' THEN v_start := v_days[1]; v_end := v_days[1];
            ELSE
                v_reason := 'its tokens do not match any slug form';
        END CASE;
    END IF;

    IF v_reason IS NULL AND v_end < v_start THEN
        v_reason := format('the window ends before it starts (%s to %s days)', v_start, v_end);
    END IF;

    IF v_reason IS NOT NULL THEN
        RAISE EXCEPTION 'schedule slug % does not parse: %', pipeline._slug_for_message(p_slug), v_reason
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = coalesce(v_hint, 'See the slug grammar in the README.');
    END IF;

    RETURN QUERY SELECT v_start::integer, v_end::integer, v_milestone;
EXCEPTION
    WHEN invalid_parameter_value THEN
        RAISE;
    WHEN OTHERS THEN
        -- No input may escape with another code: callers rely on 22023 meaning "bad slug".
        GET STACKED DIAGNOSTICS ex_message = MESSAGE_TEXT;
        RAISE EXCEPTION 'schedule slug % does not parse: %', pipeline._slug_for_message(p_slug), ex_message
            USING ERRCODE = 'invalid_parameter_value';
END;
$$;

COMMENT ON FUNCTION pipeline.parse_schedule_slug(text) IS
    'Parses a schedule slug into (start_offset_days, end_offset_days, milestone_slug); '
    'raises SQLSTATE 22023 naming the slug and the reason when it does not parse. Aliases come from pipeline.milestone_alias.';
