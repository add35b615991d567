-- The query of this run's candidates: every (patient journey, activity) pair the source holds
-- (or, when p_scoped, those in the scope _build_scope made), joined to its activity, parsed
-- schedule (pg_temp.run_schedule) and milestone date, with held_back naming why a pair cannot
-- load (NULL = it loads). Returned as text and run twice, for the held-back pairs and for the
-- load: recomputing the join is cheaper than writing millions of rows to a temp table.
CREATE OR REPLACE FUNCTION pipeline._candidate_query(p_scoped boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    -- Offsets added to a date must land inside PostgreSQL's date range; checked on day numbers
    -- so that no row raises "date out of range" and stops the statement.
    v_first_day constant integer := DATE '4714-11-24 BC' - DATE '2000-01-01';
    v_last_day constant integer := DATE '5874897-12-31' - DATE '2000-01-01';
    v_date_cases text;
    v_unusable text[];
    v_journey_pairs constant text :=
        'SELECT pj.id AS patient_journey_id, ja.activity_id '
        'FROM public.patient_journey AS pj JOIN public.journey_activity AS ja ON ja.journey_id = pj.journey_id '
        'WHERE pj.id IS NOT NULL AND ja.activity_id IS NOT NULL';
    v_survey_pairs constant text :=
        'SELECT sr.patient_journey_id, sr.activity_id FROM public.survey_result AS sr '
        'WHERE sr.patient_journey_id IS NOT NULL AND sr.activity_id IS NOT NULL';
    -- Full runs: the journeys' pairs are unique by construction, so only the few survey pairs
    -- that no journey prescribes need de-duplicating, not all millions of pairs.
    v_all_pairs constant text :=
        'SELECT pj.id AS patient_journey_id, ja.activity_id FROM public.patient_journey AS pj '
        'JOIN (SELECT DISTINCT j.journey_id, j.activity_id FROM public.journey_activity AS j '
        '      WHERE j.activity_id IS NOT NULL) AS ja ON ja.journey_id = pj.journey_id '
        'WHERE pj.id IS NOT NULL '
        'UNION ALL '
        'SELECT DISTINCT sr.patient_journey_id, sr.activity_id FROM public.survey_result AS sr '
        'LEFT JOIN public.patient_journey AS pj ON pj.id = sr.patient_journey_id '
        'WHERE sr.patient_journey_id IS NOT NULL AND sr.activity_id IS NOT NULL '
        '  AND NOT EXISTS (SELECT FROM public.journey_activity AS ja '
        '                  WHERE ja.journey_id = pj.journey_id AND ja.activity_id = sr.activity_id)';
    v_in_journeys constant text := ' IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s)';
    v_in_activities constant text := ' IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s)';
    v_pairs text;
BEGIN
    -- Scoped: one branch per kind of scope, so that each can use its own index.
    v_pairs := CASE WHEN p_scoped THEN
        concat_ws(' UNION ',
                  v_journey_pairs || ' AND pj.id' || v_in_journeys,
                  v_journey_pairs || ' AND ja.activity_id' || v_in_activities,
                  v_survey_pairs || ' AND sr.patient_journey_id' || v_in_journeys,
                  v_survey_pairs || ' AND sr.activity_id' || v_in_activities)
        ELSE v_all_pairs END;

    SELECT string_agg(format('WHEN %L THEN pj.%I::date', c.milestone_slug, c.date_column), ' ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL),
           coalesce(array_agg(c.milestone_slug) FILTER (WHERE NOT c.usable), '{}')
    INTO v_date_cases, v_unusable
    FROM pipeline._milestone_date_columns() AS c;

    RETURN format($sql$
        WITH pair AS (
            %s
        ),
        joined AS (
            SELECT p.patient_journey_id,
                   p.activity_id,
                   pj.id AS found_patient_journey_id,
                   pj.patient_id,
                   a.id AS found_activity_id,
                   a.content_slug,
                   a.schedule_id,
                   s.schedule_id AS found_schedule_id,
                   s.schedule_slug,
                   s.start_offset_days,
                   s.end_offset_days,
                   s.milestone_slug,
                   s.error_message AS parse_error,
                   CASE s.milestone_slug %s ELSE NULL::date END AS milestone_date
            FROM pair AS p
            LEFT JOIN public.patient_journey AS pj ON pj.id = p.patient_journey_id
            LEFT JOIN public.activity AS a ON a.id = p.activity_id
            LEFT JOIN pg_temp.run_schedule AS s ON s.schedule_id = a.schedule_id
        ),
        classified AS (
            SELECT j.*,
                   CASE
                       WHEN j.found_patient_journey_id IS NULL THEN 'missing patient_journey'
                       WHEN j.found_activity_id IS NULL THEN 'missing activity'
                       WHEN j.schedule_id IS NOT NULL AND j.found_schedule_id IS NULL THEN 'missing schedule'
                       WHEN j.parse_error IS NOT NULL THEN 'slug does not parse'
                       WHEN j.milestone_slug = ANY (%L::text[]) THEN 'milestone date column unusable'
                       WHEN NOT isfinite(j.milestone_date) THEN 'milestone date is infinite'
                       WHEN (j.milestone_date - DATE '2000-01-01')::bigint + j.start_offset_days
                                NOT BETWEEN %s AND %s
                         OR (j.milestone_date - DATE '2000-01-01')::bigint + j.end_offset_days
                                NOT BETWEEN %s AND %s
                           THEN 'window date out of range'
                   END AS held_back
            FROM joined AS j
        )
        SELECT c.*,
               CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.start_offset_days END
                   AS window_start_date,
               CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.end_offset_days END
                   AS window_end_date
        FROM classified AS c
    $sql$,
        v_pairs,
        coalesce(v_date_cases, 'WHEN NULL THEN NULL::date'),
        v_unusable,
        v_first_day, v_last_day, v_first_day, v_last_day);
END;
$$;

COMMENT ON FUNCTION pipeline._candidate_query(boolean) IS
    'Run step 2: the SQL of the candidate pairs (all, or the scope''s) with their windows and why any is held back.';
