-- The two queries of this run's candidates, built together so that their shared preparation
-- (the duplicate-id check, the milestone columns) is done once. The candidates: every (patient journey, activity) pair the source holds
-- (or, when p_scoped, those in the scope _build_scope made), with its activity, parsed schedule
-- (pg_temp.run_schedule) and milestone date, and held_back naming why a pair cannot load
-- (NULL = it loads). Returned as text and run twice, for the held-back pairs and for the load:
-- recomputing the join is cheaper than writing millions of rows to a temp table.
--
-- held_back_query narrows the journeys' pairs early to those that can be held back at all: a
-- missing or unusable activity, or a milestone date near the ends of the date range.
--
-- Shape, for speed at millions of pairs: what depends only on the activity (its schedule, the
-- parse result, a missing schedule or unusable milestone) is worked out once per activity; the
-- journeys' pairs are unique by construction and carry their patient journey's columns, so
-- only the few survey pairs that no journey prescribes are de-duplicated and joined again.
CREATE OR REPLACE FUNCTION pipeline._candidate_queries(p_scoped boolean,
                                                       OUT held_back_query text,
                                                       OUT load_query text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    -- Offsets added to a date must land inside PostgreSQL's date range; checked on day numbers
    -- so that no row raises "date out of range" and stops the statement.
    v_first_day constant integer := DATE '4714-11-24 BC' - DATE '2000-01-01';
    v_last_day constant integer := DATE '5874897-12-31' - DATE '2000-01-01';
    v_in_journeys constant text := 'IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s)';
    v_in_activities constant text := 'IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s)';
    v_date_cases text;
    v_unusable text[];
    v_date_at_risk text;
    v_row text;
    v_held_back_filter text;
    v_filter_marker constant text := '/* held-back filter */';
    v_query text;
    v_survey_results text := 'public.survey_result';
    v_patient_journeys text := 'public.patient_journey';
    v_journey_pair_rows text;
    v_journey_pairs text;
BEGIN
    -- A duplicated patient journey id must not duplicate its pairs. Duplicates are rare, so
    -- pay for de-duplicating (which hides the table's indexes) only when there are some. The
    -- row kept is chosen by its whole content, so full and incremental runs keep the same one.
    IF EXISTS (SELECT FROM public.patient_journey AS x GROUP BY x.id HAVING count(*) > 1) THEN
        v_patient_journeys := '(SELECT DISTINCT ON (x.id) x.* FROM public.patient_journey AS x '
                              ' WHERE x.id IS NOT NULL ORDER BY x.id, x::text)';
    END IF;
    -- Each prescribed pair as its patient journey's row plus the activity: no second join.
    v_journey_pair_rows := format(
        'SELECT pj.*, ja.activity_id AS pair_activity_id FROM %s AS pj '
        'JOIN (SELECT DISTINCT j.journey_id, j.activity_id FROM public.journey_activity AS j '
        '      WHERE j.activity_id IS NOT NULL) AS ja ON ja.journey_id = pj.journey_id '
        'WHERE pj.id IS NOT NULL', v_patient_journeys);
    v_journey_pairs := '(' || v_journey_pair_rows || ')';

    SELECT string_agg(format('WHEN %L THEN pj.%I::date', c.milestone_slug, c.date_column), ' ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL),
           coalesce(array_agg(c.milestone_slug) FILTER (WHERE NOT c.usable), '{}'),
           -- offsets stay within 36500 days, so only dates that near the range's ends are at risk
           string_agg(DISTINCT format('NOT isfinite(pj.%1$I::date) OR (pj.%1$I::date - DATE ''2000-01-01'') '
                                      'NOT BETWEEN %2$s AND %3$s',
                                      c.date_column, v_first_day + 36500, v_last_day - 36500), ' OR ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL)
    INTO v_date_cases, v_unusable, v_date_at_risk
    FROM pipeline._milestone_date_columns() AS c;

    v_held_back_filter := format('AND (a.activity_id IS NULL OR a.activity_held_back IS NOT NULL OR %s)',
                                 coalesce(v_date_at_risk, 'false'));

    IF p_scoped THEN
        -- a journey's pairs reached through either kind of scope, each branch on its own index
        v_journey_pairs := format(
            '(SELECT DISTINCT ON (x.id, x.pair_activity_id) x.* FROM (%1$s AND pj.id %2$s '
            ' UNION ALL %1$s AND ja.activity_id %3$s) AS x)',
            v_journey_pair_rows, v_in_journeys, v_in_activities);
        -- one branch per kind of scope, so that each can use its own index
        v_survey_results := format(
            '(SELECT r.patient_journey_id, r.activity_id FROM public.survey_result AS r '
            '  WHERE r.patient_journey_id %s '
            ' UNION ALL '
            ' SELECT r.patient_journey_id, r.activity_id FROM public.survey_result AS r '
            '  WHERE r.activity_id %s)',
            v_in_journeys, v_in_activities);
    END IF;

    -- One candidate row; %1$s and %2$s name the pair's keys in the branch it is used in.
    v_row := format(
        '%%1$s AS patient_journey_id, %%2$s AS activity_id, pj.id AS found_patient_journey_id, '
        'pj.patient_id, a.activity_id AS found_activity_id, a.content_slug, a.schedule_id, '
        'a.schedule_slug, a.start_offset_days, a.end_offset_days, a.milestone_slug, a.activity_held_back, '
        'CASE a.milestone_slug %s ELSE NULL::date END AS milestone_date',
        coalesce(v_date_cases, 'WHEN NULL THEN NULL::date'));

    v_query := format($sql$
        WITH activity_info AS (
            SELECT a.id AS activity_id, a.content_slug, a.schedule_id, s.schedule_slug,
                   s.start_offset_days, s.end_offset_days, s.milestone_slug,
                   CASE
                       WHEN a.schedule_id IS NOT NULL AND s.schedule_id IS NULL THEN 'missing schedule'
                       WHEN s.error_message IS NOT NULL THEN 'slug does not parse'
                       WHEN s.milestone_slug = ANY (%1$L::text[]) THEN 'milestone date column unusable'
                   END AS activity_held_back
            -- DISTINCT ON: a duplicated activity id must not duplicate its pairs
            FROM (SELECT DISTINCT ON (x.id) x.* FROM public.activity AS x
                  WHERE x.id IS NOT NULL ORDER BY x.id, x::text) AS a
            LEFT JOIN pg_temp.run_schedule AS s ON s.schedule_id = a.schedule_id
        )
        SELECT c.*,
               CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.start_offset_days END
                   AS window_start_date,
               CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.end_offset_days END
                   AS window_end_date
        FROM (
            SELECT r.*,
                   CASE
                       WHEN r.found_patient_journey_id IS NULL THEN 'missing patient_journey'
                       WHEN r.found_activity_id IS NULL THEN 'missing activity'
                       WHEN r.activity_held_back IS NOT NULL THEN r.activity_held_back
                       WHEN NOT isfinite(r.milestone_date) THEN 'milestone date is infinite'
                       WHEN (r.milestone_date - DATE '2000-01-01')::bigint + r.start_offset_days
                                NOT BETWEEN %2$s AND %3$s
                         OR (r.milestone_date - DATE '2000-01-01')::bigint + r.end_offset_days
                                NOT BETWEEN %2$s AND %3$s
                           THEN 'window date out of range'
                   END AS held_back
            FROM (
                SELECT %4$s
                FROM %5$s AS pj
                LEFT JOIN activity_info AS a ON a.activity_id = pj.pair_activity_id
                WHERE true %9$s
                UNION ALL
                SELECT %6$s
                FROM (
                    SELECT DISTINCT sr.patient_journey_id, sr.activity_id
                    FROM %7$s AS sr
                    LEFT JOIN %8$s AS pj ON pj.id = sr.patient_journey_id
                    WHERE sr.patient_journey_id IS NOT NULL AND sr.activity_id IS NOT NULL
                      AND NOT EXISTS (SELECT FROM public.journey_activity AS ja
                                      WHERE ja.journey_id = pj.journey_id AND ja.activity_id = sr.activity_id)
                ) AS p
                LEFT JOIN %8$s AS pj ON pj.id = p.patient_journey_id
                LEFT JOIN activity_info AS a ON a.activity_id = p.activity_id
            ) AS r
        ) AS c
    $sql$,
        v_unusable, v_first_day, v_last_day,
        format(v_row, 'pj.id', 'pj.pair_activity_id'), v_journey_pairs,
        format(v_row, 'p.patient_journey_id', 'p.activity_id'), v_survey_results, v_patient_journeys,
        v_filter_marker);
    held_back_query := replace(v_query, v_filter_marker, v_held_back_filter);
    load_query := replace(v_query, v_filter_marker, '');
END;
$$;

COMMENT ON FUNCTION pipeline._candidate_queries(boolean) IS
    'Run step 2: the SQL of the candidate pairs (all, or the scope''s) with their windows and why any is held back: '
    'one query narrowed to pairs that can be held back, one for the load.';
