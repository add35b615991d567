-- Run step 2, the one place where the run builds SQL: this run's candidates as temporary views
-- of fixed names, which the steps after it read with static SQL, and which a DBA can read in
-- psql after pipeline.preview_run():
--   pg_temp.run_candidate           every (patient journey, activity) pair the source holds (or,
--                                   when p_scoped, those in the scope _build_scope made), with its
--                                   activity, parsed schedule (pg_temp.run_schedule), milestone
--                                   date and window, and held_back naming why a pair cannot load
--                                   (NULL = it loads);
--   pg_temp.run_held_back_candidate the same, narrowed to the pairs that can be held back at all:
--                                   those of an activity that is missing or unusable, and those
--                                   whose milestone dates lie near the ends of the date range
--                                   (both filters apply before the pairs are formed, so it costs a
--                                   scan of the patient journeys, not of their millions of pairs);
--   pg_temp.run_window              the loadable candidates as window rows: the columns of
--                                   pipeline.patient_journey_schedule_window before its
--                                   timestamps, in its order, declared here once.
-- Views, not tables: recomputing the join twice is cheaper than writing millions of rows. The
-- SQL must be built because the milestones' date columns and the scope are known only now; it is
-- logged at DEBUG. The views read pg_temp.run_survey_pair, made here, and pg_temp.run_schedule,
-- both ON COMMIT DROP, so they go with them when the transaction ends.
--
-- Shape, for speed at millions of pairs: what depends only on the activity (its schedule, the
-- parse result, a missing schedule or unusable milestone) is worked out once per activity; the
-- journeys' pairs are unique by construction and carry their patient journey's columns; the
-- few survey pairs that no journey prescribes are found once, into pg_temp.run_survey_pair.
CREATE OR REPLACE FUNCTION pipeline._prepare_candidates(p_scoped boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    -- Offsets added to a date must land inside PostgreSQL's date range; checked on day numbers
    -- so that no row raises "date out of range" and stops the statement.
    v_first_day constant integer := DATE '4714-11-24 BC' - DATE '2000-01-01';
    v_last_day constant integer := DATE '5874897-12-31' - DATE '2000-01-01';
    v_max_offset constant integer := 36500;  -- the grammar's limit on an offset, in days
    v_in_journeys constant text := 'IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s)';
    v_in_activities constant text := 'IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s)';
    -- the prescribed pair j has an activity that exists and is not held back
    v_usable_activity constant text :=
        'EXISTS (SELECT FROM activity_info AS u WHERE u.activity_id = j.activity_id AND u.activity_held_back IS NULL)';
    v_date_cases text;
    v_unusable text[];
    v_date_at_risk text;
    v_row text;
    v_patient_journeys text := 'public.patient_journey';
    v_survey_results text := 'public.survey_result';
    v_pair_rows text;
    v_pair_scope text[];
    v_journey_scope text[];
    v_load_branches text[] := '{}'::text[];
    v_held_back_branches text[] := '{}'::text[];
    v_pairs_marker constant text := '/* the journeys'' pairs */';
    -- with a scope, a pair reached through both of its branches is taken once
    v_pairs_source constant text := CASE WHEN p_scoped
        THEN '(SELECT DISTINCT ON (x.id, x.pair_activity_id) x.* FROM (%s) AS x)' ELSE '(%s)' END;
    v_query text;
    v_load_query text;
    v_held_back_query text;
    v_has_duplicates boolean;
BEGIN
    -- plpgsql_check cannot know the temp tables _build_scope made: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope_activity (activity_id bigint)';
    -- A duplicated patient journey id must not duplicate its pairs. Duplicates are rare, so
    -- pay for de-duplicating (which hides the table's indexes) only when there are some. The
    -- row kept is the first by the values of the columns a run reads (copies that tie give the
    -- same windows), so full and incremental runs keep the same one, and no session setting
    -- changes which: ordered by their text (x::text), DateStyle chose it.
    -- With a scope, only the ids its queries can reach are checked: the cost follows the change.
    IF p_scoped THEN
        -- counted, not EXISTS: under EXISTS the planner bets on finding a row early and
        -- compares every pair of ids when there is none
        SELECT count(*) > count(DISTINCT x.id) INTO v_has_duplicates
        FROM public.patient_journey AS x
        WHERE x.id IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s
                       UNION ALL
                       SELECT pj.id FROM public.patient_journey AS pj
                       WHERE pj.journey_id IN (SELECT j.journey_id FROM public.journey_activity AS j
                                               WHERE j.activity_id IN (SELECT s.activity_id
                                                                       FROM pg_temp.run_scope_activity AS s))
                       UNION ALL
                       SELECT r.patient_journey_id FROM public.survey_result AS r
                       WHERE r.activity_id IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s));
    ELSE
        v_has_duplicates := EXISTS (SELECT FROM public.patient_journey AS x GROUP BY x.id HAVING count(*) > 1);
    END IF;
    IF v_has_duplicates THEN
        SELECT format('(SELECT DISTINCT ON (x.id) x.* FROM public.patient_journey AS x '
                      ' WHERE x.id IS NOT NULL ORDER BY x.id, x.patient_id, x.journey_id%s)',
                      string_agg(format(', x.%I', d.date_column), '' ORDER BY d.date_column COLLATE "C"))
        INTO v_patient_journeys
        FROM (SELECT DISTINCT c.date_column FROM pipeline._milestone_date_columns() AS c
              WHERE c.usable AND c.date_column IS NOT NULL) AS d;
    END IF;

    SELECT string_agg(format('WHEN %L THEN pj.%I::date', c.milestone_slug, c.date_column), ' ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL),
           coalesce(array_agg(c.milestone_slug) FILTER (WHERE NOT c.usable), '{}'),
           -- offsets stay within v_max_offset days, so only dates that near the range's ends are at risk
           string_agg(DISTINCT format('NOT isfinite(pj.%1$I::date) OR (pj.%1$I::date - DATE ''2000-01-01'') '
                                      'NOT BETWEEN %2$s AND %3$s',
                                      c.date_column, v_first_day + v_max_offset, v_last_day - v_max_offset), ' OR ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL)
    INTO v_date_cases, v_unusable, v_date_at_risk
    FROM pipeline._milestone_date_columns() AS c;

    IF p_scoped THEN
        -- a journey's pairs reached through either kind of scope, each branch on its own index
        v_pair_scope := ARRAY['', 'AND j.activity_id ' || v_in_activities];
        -- the second condition follows from the first branch's join; it lets a scan of patient
        -- journeys use their journey_id index when few activities are in scope
        v_journey_scope := ARRAY['AND pj.id ' || v_in_journeys,
                                 'AND pj.journey_id IN (SELECT j.journey_id FROM public.journey_activity AS j '
                                 '                      WHERE j.activity_id ' || v_in_activities || ')'];
        -- one branch per kind of scope, so that each can use its own index
        v_survey_results := format(
            '(SELECT r.patient_journey_id, r.activity_id FROM public.survey_result AS r '
            '  WHERE r.patient_journey_id %s '
            ' UNION ALL '
            ' SELECT r.patient_journey_id, r.activity_id FROM public.survey_result AS r '
            '  WHERE r.activity_id %s)',
            v_in_journeys, v_in_activities);
    ELSE
        v_pair_scope := ARRAY[''];
        v_journey_scope := ARRAY[''];
    END IF;

    -- Each prescribed pair as its patient journey's row plus the activity: no second join.
    -- %1$s narrows the prescribed pairs (j), %2$s is the patient journeys' source, %3$s narrows it.
    v_pair_rows := 'SELECT pj.*, ja.activity_id AS pair_activity_id FROM %2$s AS pj '
                   'JOIN (SELECT DISTINCT j.journey_id, j.activity_id FROM public.journey_activity AS j '
                   '      WHERE j.activity_id IS NOT NULL %1$s) AS ja ON ja.journey_id = pj.journey_id '
                   'WHERE pj.id IS NOT NULL %3$s';
    FOR i IN 1 .. cardinality(v_pair_scope) LOOP
        v_load_branches := v_load_branches
            || format(v_pair_rows, v_pair_scope[i], v_patient_journeys, v_journey_scope[i]);
        -- held back: an unusable activity's pairs, and a usable one's on a journey whose dates
        -- are at risk; those journeys are found first (OFFSET 0 keeps the planner from joining
        -- every journey's pairs before it filters them)
        v_held_back_branches := v_held_back_branches
            || format(v_pair_rows, v_pair_scope[i] || ' AND NOT ' || v_usable_activity,
                      v_patient_journeys, v_journey_scope[i])
            || format(v_pair_rows, v_pair_scope[i] || ' AND ' || v_usable_activity,
                      format('(SELECT pj.* FROM %s AS pj WHERE (%s) %s OFFSET 0)',
                             v_patient_journeys, coalesce(v_date_at_risk, 'false'), v_journey_scope[i]),
                      '');
    END LOOP;

    -- The survey pairs no journey prescribes, found once for both queries. With a scope, each
    -- result's patient journey is looked up by its id (OFFSET 0 keeps the lookup per row),
    -- rather than hashing every patient journey: the cost follows the scope.
    CREATE TEMP TABLE run_survey_pair (patient_journey_id bigint, activity_id bigint) ON COMMIT DROP;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_survey_pair (patient_journey_id bigint, activity_id bigint)';
    EXECUTE format(
        'INSERT INTO pg_temp.run_survey_pair '
        'SELECT DISTINCT sr.patient_journey_id, sr.activity_id '
        'FROM %s AS sr '
        || CASE WHEN p_scoped
               THEN 'LEFT JOIN LATERAL (SELECT x.journey_id FROM %s AS x '
                    '                   WHERE x.id = sr.patient_journey_id OFFSET 0) AS pj ON true '
               ELSE 'LEFT JOIN %s AS pj ON pj.id = sr.patient_journey_id ' END
        || 'WHERE sr.patient_journey_id IS NOT NULL AND sr.activity_id IS NOT NULL '
        '  AND NOT EXISTS (SELECT FROM public.journey_activity AS ja '
        '                  WHERE ja.journey_id = pj.journey_id AND ja.activity_id = sr.activity_id)',
        v_survey_results, v_patient_journeys);
    ANALYZE pg_temp.run_survey_pair;

    -- One candidate row; %1$s and %2$s name the pair's keys in the branch it is used in.
    v_row := format(
        '%%1$s AS patient_journey_id, %%2$s AS activity_id, pj.id AS found_patient_journey_id, '
        'pj.patient_id, a.activity_id AS found_activity_id, a.content_slug, a.schedule_id, '
        'a.schedule_slug, a.start_offset_days, a.end_offset_days, a.milestone_slug, a.activity_held_back, '
        'CASE a.milestone_slug %s ELSE NULL::date END AS milestone_date',
        -- v_row is a format string below: a % in a milestone slug or column name must stay literal
        coalesce(replace(v_date_cases, '%', '%%'), 'WHEN NULL THEN NULL::date'));

    v_query := format($sql$
        WITH activity_info AS (
            SELECT a.id AS activity_id, a.content_slug, a.schedule_id, s.schedule_slug,
                   s.start_offset_days, s.end_offset_days, s.milestone_slug,
                   CASE
                       WHEN a.schedule_id IS NOT NULL AND s.schedule_id IS NULL
                           THEN 'missing schedule'::pipeline.held_back_reason
                       WHEN s.error_message IS NOT NULL THEN 'slug does not parse'::pipeline.held_back_reason
                       WHEN s.milestone_slug = ANY (%1$L::text[])
                           THEN 'milestone date column unusable'::pipeline.held_back_reason
                   END AS activity_held_back
            -- DISTINCT ON: a duplicated activity id must not duplicate its pairs; the copy kept
            -- is the first by the values a run reads, which no session setting reorders
            FROM (SELECT DISTINCT ON (x.id) x.* FROM public.activity AS x
                  WHERE x.id IS NOT NULL ORDER BY x.id, x.content_slug COLLATE "C", x.schedule_id) AS a
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
                       WHEN r.found_patient_journey_id IS NULL THEN 'missing patient_journey'::pipeline.held_back_reason
                       WHEN r.found_activity_id IS NULL THEN 'missing activity'::pipeline.held_back_reason
                       WHEN r.activity_held_back IS NOT NULL THEN r.activity_held_back
                       -- the common case first: a date no offset can take out of the range
                       WHEN r.milestone_date BETWEEN DATE '2000-01-01' + %8$s AND DATE '2000-01-01' + %9$s THEN NULL
                       WHEN NOT isfinite(r.milestone_date) THEN 'milestone date is infinite'::pipeline.held_back_reason
                       WHEN (r.milestone_date - DATE '2000-01-01')::bigint + r.start_offset_days
                                NOT BETWEEN %2$s AND %3$s
                         OR (r.milestone_date - DATE '2000-01-01')::bigint + r.end_offset_days
                                NOT BETWEEN %2$s AND %3$s
                           THEN 'window date out of range'::pipeline.held_back_reason
                   END AS held_back
            FROM (
                SELECT %4$s
                FROM %5$s AS pj
                LEFT JOIN activity_info AS a ON a.activity_id = pj.pair_activity_id
                UNION ALL
                SELECT %6$s
                FROM pg_temp.run_survey_pair AS p
                LEFT JOIN %7$s AS pj ON pj.id = p.patient_journey_id
                LEFT JOIN activity_info AS a ON a.activity_id = p.activity_id
                -- checked again in this statement's snapshot: should the application have made
                -- the journey prescribe the pair since run_survey_pair was filled, it is a
                -- journey pair now, and must not come twice
                WHERE NOT EXISTS (SELECT FROM public.journey_activity AS ja
                                  WHERE ja.journey_id = pj.journey_id AND ja.activity_id = p.activity_id)
                -- OFFSET 0 (here and below) keeps a level a subquery, so that each pair's
                -- milestone date and held_back are computed once, not again wherever the levels
                -- above use them
                OFFSET 0
            ) AS r
            OFFSET 0
        ) AS c
    $sql$,
        v_unusable, v_first_day, v_last_day,
        format(v_row, 'pj.id', 'pj.pair_activity_id'), v_pairs_marker,
        format(v_row, 'p.patient_journey_id', 'p.activity_id'), v_patient_journeys,
        v_first_day + v_max_offset, v_last_day - v_max_offset);
    v_load_query := replace(v_query, v_pairs_marker,
                            format(v_pairs_source, array_to_string(v_load_branches, ' UNION ALL ')));
    v_held_back_query := replace(v_query, v_pairs_marker,
                                 format(v_pairs_source, array_to_string(v_held_back_branches, ' UNION ALL ')));
    RAISE DEBUG 'pg_temp.run_candidate: %', v_load_query;
    RAISE DEBUG 'pg_temp.run_held_back_candidate: %', v_held_back_query;
    EXECUTE 'CREATE TEMP VIEW run_candidate AS ' || v_load_query;
    EXECUTE 'CREATE TEMP VIEW run_held_back_candidate AS ' || v_held_back_query;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_candidate (patient_journey_id bigint, activity_id bigint, '
            'found_patient_journey_id bigint, patient_id bigint, found_activity_id bigint, content_slug text, '
            'schedule_id bigint, schedule_slug text, start_offset_days integer, end_offset_days integer, '
            'milestone_slug text, activity_held_back pipeline.held_back_reason, milestone_date date, '
            'held_back pipeline.held_back_reason, window_start_date date, window_end_date date)';
    -- the window row: named and ordered as the window table's columns (a test checks it)
    CREATE TEMP VIEW run_window AS
    SELECT c.patient_id, c.patient_journey_id, c.activity_id, c.content_slug AS activity_content_slug,
           c.schedule_id, c.schedule_slug, c.start_offset_days AS schedule_start_offset_days,
           c.end_offset_days AS schedule_end_offset_days, c.milestone_slug AS schedule_milestone_slug,
           c.milestone_date, c.window_start_date, c.window_end_date
    FROM pg_temp.run_candidate AS c
    WHERE c.held_back IS NULL;
END;
$$;

-- A step of the run (and of pipeline.preview_run), not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._prepare_candidates(boolean) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._prepare_candidates(boolean) IS
    'Run step 2: this run''s candidate pairs (all, or the scope''s) with their windows and why any is held back, '
    'as the temporary views run_candidate, run_held_back_candidate (those that can be held back) and run_window.';
