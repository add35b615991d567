-- Run step 2, the one place where the run builds SQL: this run's candidates as temporary views
-- of fixed names, which the steps after it read with static SQL, and which a DBA can read in
-- psql after pipeline.preview_run():
--   pg_temp.run_candidate           every (patient journey, activity) pair the source holds (or,
--                                   when p_scoped, those in the scope _build_scope made), with its
--                                   activity, parsed schedule (pg_temp.run_schedule), milestone
--                                   date and window, its survey results (result_count, and
--                                   completed_on: the date that decides a done_* status of
--                                   pipeline.adherence), and held_back naming why a pair cannot
--                                   load (NULL = it loads);
--   pg_temp.run_held_back_candidate the same, narrowed to the pairs that can be held back at all:
--                                   those of an activity that is missing or unusable, and those
--                                   whose milestone dates lie near the ends of the date range
--                                   (both filters apply before the pairs are formed, so it costs a
--                                   scan of the patient journeys, not of their millions of pairs);
--   pg_temp.run_window              the loadable candidates as window rows: the columns of
--                                   pipeline.patient_journey_schedule_window a run writes (all
--                                   but inserted_at and updated_at), in its order, declared here once.
-- Views, not tables: recomputing the join twice is cheaper than writing millions of rows. The
-- SQL must be built because the milestones' date columns and the scope are known only now; it is
-- logged at DEBUG. The views read the tables made here and pg_temp.run_schedule; the temporary
-- ones are ON COMMIT DROP, so views and tables go together when the transaction ends.
-- p_parallel (a full run's own, never preview_run's): the tables the views join, run_*_activity,
-- run_patient_journey, run_pair_result and run_survey_pair, are unlogged tables of schema
-- pipeline instead, which parallel workers can read (temporary tables are private to the
-- session), so that a CREATE TABLE AS of the views runs in parallel (at 100,000 journeys the
-- window rows took 4.9 s so, 8.3 s from temporary tables). They are the owner's, invisible to
-- other sessions until the transaction commits, and the run drops them before it does
-- (pipeline._drop_run_tables); a failed run's rollback removes them with everything else.
--
-- Shape, for speed at millions of pairs: what depends only on the activity (its schedule, the
-- parse result, a missing schedule or unusable milestone) is worked out once per activity; the
-- journeys' pairs are unique by construction and carry their patient journey's columns; the
-- few survey pairs that no journey prescribes are found once, into run_survey_pair; the survey
-- results are summed up once, one row per pair that has any, into run_pair_result.
CREATE OR REPLACE FUNCTION pipeline._prepare_candidates(p_scoped boolean, p_parallel boolean)
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
    -- where the tables the views join go, and how each is made (%I: its name)
    v_work constant name := CASE WHEN p_parallel THEN name 'pipeline' ELSE name 'pg_temp' END;
    v_new_table constant text := CASE WHEN p_parallel THEN 'CREATE UNLOGGED TABLE pipeline.%I AS '
                                      ELSE 'CREATE TEMP TABLE %I ON COMMIT DROP AS ' END;
    -- the prescribed pair j has an activity that exists and is not held back
    v_usable_activity constant text := format(
        'EXISTS (SELECT FROM %s.run_activity AS u WHERE u.activity_id = j.activity_id AND u.activity_held_back IS NULL)',
        v_work);
    v_date_cases text;
    v_unusable text[];
    v_date_at_risk text;
    v_row text;
    v_patient_journeys text;
    v_date_columns text;
    v_survey_results text := 'public.survey_result';
    v_pair_rows text;
    v_pair_scope text[];
    v_journey_scope text[];
    v_load_branches text[] := '{}'::text[];
    v_held_back_branches text[] := '{}'::text[];
    v_pairs_marker constant text := '/* the journeys'' pairs */';
    v_results_marker constant text := format('/* the journey pairs'' results */ %s.run_pair_result', v_work);
    v_query text;
    v_load_query text;
    v_held_back_query text;
    v_has_duplicates boolean;
    v_time_zone text;
    v_hashagg text;
BEGIN
    IF p_parallel AND p_scoped THEN
        -- the scope's statements read the temporary tables by their names
        RAISE EXCEPTION 'an incremental run prepares its candidates in temporary tables only';
    END IF;
    -- plpgsql_check cannot know the temp tables _build_scope made: the pragmas tell it (no-ops when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope (patient_journey_id bigint)';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_scope_activity (activity_id bigint)';
    -- The journeys' activities, once and de-duplicated, for every statement below: all of them
    -- read the same ones (an activity the application prescribes meanwhile waits for the next
    -- run, as its queued change says), and with this table's statistics the planner knows that
    -- each patient journey has dozens of pairs, not one.
    EXECUTE format(v_new_table, 'run_journey_activity')
            || 'SELECT DISTINCT j.journey_id, j.activity_id FROM public.journey_activity AS j '
               'WHERE j.journey_id IS NOT NULL AND j.activity_id IS NOT NULL';
    PERFORM 'PRAGMA:TABLE: pg_temp.run_journey_activity (journey_id bigint, activity_id bigint)';
    EXECUTE format('ANALYZE %s.run_journey_activity', v_work);
    -- A duplicated patient journey id must not duplicate its pairs. Duplicates are rare, so
    -- pay for de-duplicating (which hides the table's indexes) only when there are some. The
    -- row kept is the first by the values of the columns a run reads (copies that tie give the
    -- same windows), so full and incremental runs keep the same one, and no session setting
    -- changes which: ordered by their text (x::text), DateStyle chose it.
    -- With a scope, only the ids its queries can reach are checked: the cost follows the change.
    -- Fewer still while no id repeats (change_capture_state.ids_repeat, which a full run
    -- records): a new copy comes from a write of patient journeys, whose ids the run's changes
    -- name (kind patient_journey), so those are the ones to look at; one found there is
    -- recorded, and routine runs look at their whole reach again until a full run finds none.
    -- A unique index on patient_journey.id alone (a primary key, say), whole, immediate and of
    -- the type's own equality, rules copies out: then there is nothing to look for.
    IF EXISTS (SELECT FROM pg_catalog.pg_index AS i
               JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               JOIN pg_catalog.pg_opclass AS o ON o.oid = i.indclass[0]
               WHERE i.indrelid = 'public.patient_journey'::regclass AND a.attname = 'id'
                 AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indnkeyatts = 1
                 AND i.indpred IS NULL AND i.indexprs IS NULL AND o.opcdefault) THEN
        v_has_duplicates := false;
    ELSIF p_scoped AND EXISTS (SELECT FROM pipeline.change_capture_state AS s
                               WHERE s.table_name = 'public.patient_journey' AND NOT s.ids_repeat) THEN
        PERFORM 'PRAGMA:TABLE: pg_temp.run_touched (kind text, key bigint)';
        -- The ids the drained changes name, and those queued since the drain: in this
        -- statement's snapshot every copy it sees was written with its queue row, drained or
        -- not. Counted, not EXISTS: under EXISTS the planner bets on finding a row early and
        -- compares every pair of ids when there is none.
        SELECT count(*) > count(DISTINCT x.id) INTO v_has_duplicates
        FROM public.patient_journey AS x
        WHERE x.id IN (SELECT t.key FROM pg_temp.run_touched AS t WHERE t.kind = 'patient_journey'
                       UNION ALL
                       SELECT k.key FROM pipeline.change_queue AS q, unnest(q.keys) AS k (key)
                       WHERE q.kind = 'patient_journey');
        IF v_has_duplicates THEN
            UPDATE pipeline.change_capture_state AS s SET ids_repeat = true
            WHERE s.table_name = 'public.patient_journey';
        END IF;
    ELSIF p_scoped THEN
        -- every id the scope's queries can reach (counted, as above)
        SELECT count(*) > count(DISTINCT x.id) INTO v_has_duplicates
        FROM public.patient_journey AS x
        WHERE x.id IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s
                       UNION ALL
                       SELECT pj.id FROM public.patient_journey AS pj
                       WHERE pj.journey_id IN (SELECT j.journey_id FROM pg_temp.run_journey_activity AS j
                                               WHERE j.activity_id IN (SELECT s.activity_id
                                                                       FROM pg_temp.run_scope_activity AS s))
                       UNION ALL
                       SELECT r.patient_journey_id FROM public.survey_result AS r
                       WHERE r.activity_id IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s));
    ELSE
        -- (a NULL id forms no pair: NULLs are no copies)
        v_has_duplicates := EXISTS (SELECT FROM public.patient_journey AS x WHERE x.id IS NOT NULL
                                    GROUP BY x.id HAVING count(*) > 1);
    END IF;
    -- What the routine runs after it rely on; a full run's own (never preview_run's: p_parallel).
    -- Not recorded (NULL) where writes in session_replication_role = replica go unseen (migrate
    -- does not own the table): a copy written so would name no queued id.
    IF p_parallel THEN
        UPDATE pipeline.change_capture_state AS s
        SET ids_repeat = CASE WHEN pipeline._replica_writes_captured('public.patient_journey')
                              THEN v_has_duplicates END
        WHERE s.table_name = 'public.patient_journey';
    END IF;
    -- The milestones' date columns, looked up once: the columns a run reads of the patient
    -- journeys, and the date each milestone slug takes
    WITH c AS (SELECT * FROM pipeline._milestone_date_columns())
    SELECT (SELECT coalesce(string_agg(format(', x.%I', d.date_column), '' ORDER BY d.date_column COLLATE "C"), '')
            FROM (SELECT DISTINCT u.date_column FROM c AS u WHERE u.usable AND u.date_column IS NOT NULL) AS d),
           string_agg(format('WHEN %L THEN pj.%I::date', c.milestone_slug, c.date_column), ' ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL),
           coalesce(array_agg(c.milestone_slug) FILTER (WHERE NOT c.usable), '{}'),
           -- offsets stay within v_max_offset days, so only dates that near the range's ends are at risk
           string_agg(DISTINCT format('NOT isfinite(pj.%1$I::date) OR (pj.%1$I::date - DATE ''2000-01-01'') '
                                      'NOT BETWEEN %2$s AND %3$s',
                                      c.date_column, v_first_day + v_max_offset, v_last_day - v_max_offset), ' OR ')
               FILTER (WHERE c.usable AND c.date_column IS NOT NULL)
    INTO v_date_columns, v_date_cases, v_unusable, v_date_at_risk
    FROM c;
    -- Only the columns a run reads: another of the owner's (a pair_activity_id, say) would be
    -- taken for a name the queries below give, and a copy (de-duplicated) is analyzed, which
    -- would run the code of a column type of the owner's (a range type's subtype_diff) with
    -- pipeline_owner's rights. The planner pulls the plain subquery up: the table's indexes serve.
    v_patient_journeys := format('(SELECT x.id, x.patient_id, x.journey_id%s FROM public.patient_journey AS x)',
                                 v_date_columns);
    IF v_has_duplicates THEN
        v_patient_journeys := format('(SELECT DISTINCT ON (x.id) x.id, x.patient_id, x.journey_id%1$s '
                                     'FROM public.patient_journey AS x '
                                     'WHERE x.id IS NOT NULL ORDER BY x.id, x.patient_id, x.journey_id%1$s)',
                                     v_date_columns);
        -- A full run reads every patient journey: de-duplicate them once, into a table whose
        -- statistics tell the planner how many pairs each journey has (through the subquery it
        -- saw one pair per patient journey, and looked millions of rows up one by one).
        IF NOT p_scoped THEN
            EXECUTE format(v_new_table, 'run_patient_journey') || v_patient_journeys;
            v_patient_journeys := v_work || '.run_patient_journey';
            EXECUTE 'ANALYZE ' || v_patient_journeys;
        END IF;
    END IF;

    -- What depends only on the activity, once per activity: its schedule, parsed, and why its
    -- pairs are held back, if they are. A table with statistics, not a CTE: the planner cannot
    -- estimate a CTE's filter on activity_held_back, took the usable activities for one, and
    -- rescanned the patient journeys once per activity.
    EXECUTE format(v_new_table, 'run_activity') || $sql$
    SELECT a.id AS activity_id, a.content_slug, a.schedule_id, s.schedule_slug,
           s.start_offset_days, s.end_offset_days, s.milestone_slug,
           CASE
               WHEN a.schedule_id IS NOT NULL AND s.schedule_id IS NULL
                   THEN 'missing schedule'::pipeline.held_back_reason
               WHEN s.error_message IS NOT NULL THEN 'slug does not parse'::pipeline.held_back_reason
               WHEN s.milestone_slug = ANY ($1) THEN 'milestone date column unusable'::pipeline.held_back_reason
           END AS activity_held_back
    -- DISTINCT ON: a duplicated activity id must not duplicate its pairs; the copy kept is the
    -- first by the values a run reads, which no session setting reorders
    FROM (SELECT DISTINCT ON (x.id) x.* FROM public.activity AS x
          WHERE x.id IS NOT NULL ORDER BY x.id, x.content_slug COLLATE "C", x.schedule_id) AS a
    LEFT JOIN pg_temp.run_schedule AS s ON s.schedule_id = a.schedule_id
    $sql$ USING v_unusable;
    -- Unique by the DISTINCT ON. The views' branch of survey pairs that no journey prescribes
    -- joins it by a nested loop (the planner expects one such pair): without the index, with
    -- a scan of the activities per pair (13,500 pairs at 100,000 journeys: 113 against 17 ms).
    EXECUTE format('CREATE UNIQUE INDEX ON %s.run_activity (activity_id)', v_work);
    EXECUTE format('ANALYZE %s.run_activity', v_work);

    IF p_scoped THEN
        -- a journey's pairs reached through either kind of scope, each branch on its own index
        v_pair_scope := ARRAY['', 'AND j.activity_id ' || v_in_activities];
        -- the second condition follows from the first branch's join; it lets a scan of patient
        -- journeys use their journey_id index when few activities are in scope. The third leaves
        -- the journeys of the first branch to it, so that no pair comes twice: cheaper than
        -- de-duplicating the pairs after (a sort of them all, 46 of a small change's 700 ms write)
        v_journey_scope := ARRAY['AND pj.id ' || v_in_journeys,
                                 'AND pj.journey_id IN (SELECT j.journey_id FROM pg_temp.run_journey_activity AS j '
                                 '                      WHERE j.activity_id ' || v_in_activities || ') '
                                 'AND NOT EXISTS (SELECT FROM pg_temp.run_scope AS s WHERE s.patient_journey_id = pj.id)'];
        -- one branch per kind of scope, so that each can use its own index; a result both reach
        -- is taken by the first only, so that it is counted once
        v_survey_results := format(
            '(SELECT r.patient_journey_id, r.activity_id, r.start_time, r.end_time FROM public.survey_result AS r '
            '  WHERE r.patient_journey_id %s '
            ' UNION ALL '
            ' SELECT r.patient_journey_id, r.activity_id, r.start_time, r.end_time FROM public.survey_result AS r '
            '  WHERE r.activity_id %s '
            '    AND NOT EXISTS (SELECT FROM pg_temp.run_scope AS s WHERE s.patient_journey_id = r.patient_journey_id))',
            v_in_journeys, v_in_activities);
    ELSE
        v_pair_scope := ARRAY[''];
        v_journey_scope := ARRAY[''];
    END IF;

    -- Each prescribed pair as its patient journey's row plus the activity: no second join.
    -- %1$s narrows the prescribed pairs (j), %2$s is the patient journeys' source, %3$s narrows it.
    v_pair_rows := 'SELECT pj.*, ja.activity_id AS pair_activity_id FROM %2$s AS pj '
                   'JOIN (SELECT j.journey_id, j.activity_id FROM ' || v_work || '.run_journey_activity AS j '
                   '      WHERE true %1$s) AS ja ON ja.journey_id = pj.journey_id '
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

    -- The survey results per pair that has any, for both views: how many, how many are dated
    -- (coalesce(end_time, start_time), as a date in report_time_zone), the first and the last
    -- date. These decide a done_* status for a pair with up to two dated results, most of them;
    -- only the few with more get the array of their dates, afterwards (an array per pair, in one
    -- aggregate over millions of pairs, costs several times the rest). CREATE TABLE AS, unlike
    -- INSERT, may read in parallel; and sorting the results in parallel workers, then grouping
    -- them, takes about two thirds of the time of one hash table of millions of groups, which
    -- the planner prefers on its estimate of the groups: so no hash aggregate here.
    SELECT s.report_time_zone INTO v_time_zone FROM pipeline.settings AS s;
    v_hashagg := current_setting('enable_hashagg');
    PERFORM set_config('enable_hashagg', 'off', true);
    EXECUTE format(v_new_table, 'run_pair_result') || format(
        'SELECT sr.patient_journey_id, sr.activity_id, count(*)::integer AS result_count, '
        '       count(sr.result_date)::integer AS dated_count, min(sr.result_date) AS first_date, '
        '       max(sr.result_date) AS last_date, NULL::date[] AS result_dates '
        'FROM (SELECT r.patient_journey_id, r.activity_id, '
        '             (coalesce(r.end_time, r.start_time) AT TIME ZONE %L)::date AS result_date '
        '      FROM %s AS r) AS sr '
        'WHERE sr.patient_journey_id IS NOT NULL AND sr.activity_id IS NOT NULL '
        'GROUP BY sr.patient_journey_id, sr.activity_id',
        v_time_zone, v_survey_results);
    PERFORM set_config('enable_hashagg', v_hashagg, true);
    EXECUTE format($sql$
        UPDATE %s.run_pair_result AS p
        SET result_dates = (SELECT array_agg((coalesce(r.end_time, r.start_time) AT TIME ZONE $1)::date)
                            FROM public.survey_result AS r
                            WHERE r.patient_journey_id = p.patient_journey_id AND r.activity_id = p.activity_id
                              AND coalesce(r.end_time, r.start_time) IS NOT NULL)
        WHERE p.dated_count > 2
        $sql$, v_work) USING v_time_zone;
    EXECUTE format('ANALYZE %s.run_pair_result', v_work);

    -- The survey pairs that no journey prescribes, with their results (so that their branch of
    -- the views joins no results): few, found with an anti-join among the pairs that have
    -- results. With a scope, each pair's patient journey is looked up by its id (OFFSET 0 keeps
    -- the lookup per row), rather than hashing every patient journey: the cost follows the scope.
    EXECUTE format(v_new_table, 'run_survey_pair') || format(
        'SELECT sr.* '
        'FROM %1$s.run_pair_result AS sr '
        || CASE WHEN p_scoped
               THEN 'LEFT JOIN LATERAL (SELECT x.journey_id FROM %2$s AS x '
                    '                   WHERE x.id = sr.patient_journey_id OFFSET 0) AS pj ON true '
               ELSE 'LEFT JOIN %2$s AS pj ON pj.id = sr.patient_journey_id ' END
        || 'WHERE NOT EXISTS (SELECT FROM %1$s.run_journey_activity AS ja '
        '                  WHERE ja.journey_id = pj.journey_id AND ja.activity_id = sr.activity_id)',
        v_work, v_patient_journeys);
    -- a full run's retiring step looks each unprescribed window row up in it (_retire_windows)
    IF NOT p_scoped THEN
        EXECUTE format('CREATE INDEX ON %s.run_survey_pair (patient_journey_id, activity_id)', v_work);
    END IF;
    EXECUTE format('ANALYZE %s.run_survey_pair', v_work);

    -- One candidate row; %1$s and %2$s name the pair's keys in the branch it is used in, %3$s its results.
    v_row := format(
        '%%1$s AS patient_journey_id, %%2$s AS activity_id, pj.id AS found_patient_journey_id, '
        'pj.patient_id, a.activity_id AS found_activity_id, a.content_slug, a.schedule_id, '
        'a.schedule_slug, a.start_offset_days, a.end_offset_days, a.milestone_slug, a.activity_held_back, '
        'CASE a.milestone_slug %s ELSE NULL::date END AS milestone_date, '
        'coalesce(%%3$s.result_count, 0) AS result_count, coalesce(%%3$s.dated_count, 0) AS dated_count, '
        '%%3$s.first_date, %%3$s.last_date, %%3$s.result_dates',
        -- v_row is a format string below: a % in a milestone slug or column name must stay literal
        coalesce(replace(v_date_cases, '%', '%%'), 'WHEN NULL THEN NULL::date'));

    v_query := format($sql$
        SELECT w.*,
               -- the date that decides a done_* status: the first result in the window, else
               -- the first after it, else the last before it; none without a window (no
               -- schedule, or its milestone has no date). Of one or two dated results the first
               -- and last date tell which; only a pair with more reads its array.
               CASE WHEN w.held_back IS NOT NULL OR w.dated_count = 0 OR w.schedule_id IS NULL
                         OR (w.milestone_slug IS NOT NULL AND w.milestone_date IS NULL) THEN NULL
                    WHEN w.dated_count <= 2 THEN
                        CASE WHEN (w.first_date >= w.window_start_date OR w.window_start_date IS NULL)
                                  AND (w.first_date <= w.window_end_date OR w.window_end_date IS NULL)
                                 THEN w.first_date
                             WHEN (w.last_date >= w.window_start_date OR w.window_start_date IS NULL)
                                  AND (w.last_date <= w.window_end_date OR w.window_end_date IS NULL)
                                 THEN w.last_date
                             WHEN w.first_date > w.window_end_date THEN w.first_date
                             WHEN w.last_date > w.window_end_date THEN w.last_date
                             ELSE w.last_date  -- both before the window
                        END
                    ELSE pipeline._completed_on(w.result_dates, w.window_start_date, w.window_end_date)
               END AS completed_on
        FROM (
        SELECT c.*,
               -- pipeline._computed_once (here and below) keeps a level a subquery, so that each
               -- pair's held_back and window are computed once, not again wherever the levels
               -- above use them, and lets parallel workers run them all (OFFSET 0 did not); the
               -- union's branches are subqueries of their own, which compute the milestone dates
               pipeline._computed_once(CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.start_offset_days END)
                   AS window_start_date,
               CASE WHEN c.held_back IS NULL THEN c.milestone_date + c.end_offset_days END
                   AS window_end_date
        FROM (
            SELECT r.*,
                   pipeline._computed_once(CASE
                       WHEN r.found_patient_journey_id IS NULL THEN 'missing patient_journey'::pipeline.held_back_reason
                       WHEN r.found_activity_id IS NULL THEN 'missing activity'::pipeline.held_back_reason
                       WHEN r.activity_held_back IS NOT NULL THEN r.activity_held_back
                       -- the common case first: a date no offset can take out of the range
                       WHEN r.milestone_date BETWEEN DATE '2000-01-01' + %7$s AND DATE '2000-01-01' + %8$s THEN NULL
                       WHEN NOT isfinite(r.milestone_date) THEN 'milestone date is infinite'::pipeline.held_back_reason
                       WHEN (r.milestone_date - DATE '2000-01-01')::bigint + r.start_offset_days
                                NOT BETWEEN %1$s AND %2$s
                         OR (r.milestone_date - DATE '2000-01-01')::bigint + r.end_offset_days
                                NOT BETWEEN %1$s AND %2$s
                           THEN 'window date out of range'::pipeline.held_back_reason
                   END) AS held_back
            FROM (
                SELECT %3$s
                FROM %4$s AS pj
                LEFT JOIN %9$s.run_activity AS a ON a.activity_id = pj.pair_activity_id
                LEFT JOIN /* the journey pairs' results */ %9$s.run_pair_result AS res
                    ON res.patient_journey_id = pj.id AND res.activity_id = pj.pair_activity_id
                UNION ALL
                SELECT %5$s
                FROM %9$s.run_survey_pair AS p
                LEFT JOIN %6$s AS pj ON pj.id = p.patient_journey_id
                LEFT JOIN %9$s.run_activity AS a ON a.activity_id = p.activity_id
                -- checked again in this statement's snapshot, against the same copy of the
                -- journeys' activities: a pair the journey prescribes must not come twice
                WHERE NOT EXISTS (SELECT FROM %9$s.run_journey_activity AS ja
                                  WHERE ja.journey_id = pj.journey_id AND ja.activity_id = p.activity_id)
            ) AS r
        ) AS c
        ) AS w
    $sql$,
        v_first_day, v_last_day,
        format(v_row, 'pj.id', 'pj.pair_activity_id', 'res'), v_pairs_marker,
        format(v_row, 'p.patient_journey_id', 'p.activity_id', 'p'), v_patient_journeys,
        v_first_day + v_max_offset, v_last_day - v_max_offset, v_work);
    v_load_query := replace(v_query, v_pairs_marker,
                            format('(%s)', array_to_string(v_load_branches, ' UNION ALL ')));
    -- The journey pairs that can be held back read only the results they can have: those of an
    -- activity that is missing or unusable, or of a journey whose dates are at risk. Joined to
    -- every pair's results, the planner sorted or hashed millions of them for a few of their pairs.
    v_held_back_query := replace(replace(v_query, v_pairs_marker,
                                         format('(%s)', array_to_string(v_held_back_branches, ' UNION ALL '))),
                                 v_results_marker,
                                 format('(SELECT r.* FROM %1$s.run_pair_result AS r '
                                        ' WHERE NOT EXISTS (SELECT FROM %1$s.run_activity AS u '
                                        '                   WHERE u.activity_id = r.activity_id '
                                        '                     AND u.activity_held_back IS NULL) '
                                        '    OR r.patient_journey_id IN (SELECT pj.id FROM %2$s AS pj WHERE (%3$s)%4$s))',
                                        v_work, v_patient_journeys, coalesce(v_date_at_risk, 'false'),
                                        -- with a scope, only the journeys of its results: not a
                                        -- scan of every patient journey (most of a one-journey
                                        -- run at 100,000 journeys, 23 of its 30 ms)
                                        CASE WHEN p_scoped
                                             THEN ' AND pj.id IN (SELECT x.patient_journey_id FROM pg_temp.run_pair_result AS x)'
                                             ELSE '' END));
    RAISE DEBUG 'pg_temp.run_candidate: %', v_load_query;
    RAISE DEBUG 'pg_temp.run_held_back_candidate: %', v_held_back_query;
    EXECUTE 'CREATE TEMP VIEW run_candidate AS ' || v_load_query;
    EXECUTE 'CREATE TEMP VIEW run_held_back_candidate AS ' || v_held_back_query;
    PERFORM 'PRAGMA:TABLE: pg_temp.run_candidate (patient_journey_id bigint, activity_id bigint, '
            'found_patient_journey_id bigint, patient_id bigint, found_activity_id bigint, content_slug text, '
            'schedule_id bigint, schedule_slug text, start_offset_days integer, end_offset_days integer, '
            'milestone_slug text, activity_held_back pipeline.held_back_reason, milestone_date date, '
            'result_count integer, dated_count integer, first_date date, last_date date, result_dates date[], '
            'held_back pipeline.held_back_reason, '
            'window_start_date date, window_end_date date, completed_on date)';
    -- the held-back pairs as rows of pipeline.held_back_pair, in its columns' order (a test checks it)
    CREATE TEMP VIEW run_held_back_row AS
    SELECT c.patient_journey_id, c.activity_id, c.held_back, c.schedule_id, c.schedule_slug,
           c.milestone_slug, c.milestone_date, c.start_offset_days, c.end_offset_days, c.patient_id,
           c.content_slug AS activity_content_slug, c.result_count
    FROM pg_temp.run_held_back_candidate AS c
    WHERE c.held_back IS NOT NULL;
    -- the window row: named and ordered as the window table's columns (a test checks it); a
    -- pair the source has is not retired, and one that loads is not held back
    CREATE TEMP VIEW run_window AS
    SELECT c.patient_id, c.patient_journey_id, c.activity_id, c.content_slug AS activity_content_slug,
           c.schedule_id, c.schedule_slug, c.start_offset_days AS schedule_start_offset_days,
           c.end_offset_days AS schedule_end_offset_days, c.milestone_slug AS schedule_milestone_slug,
           c.milestone_date, c.window_start_date, c.window_end_date, NULL::timestamptz AS retired_at,
           c.result_count, c.completed_on, false AS held_back
    FROM pg_temp.run_candidate AS c
    WHERE c.held_back IS NULL;
END;
$$;

-- A step of the run (and of pipeline.preview_run), not for anyone to call.
REVOKE ALL ON FUNCTION pipeline._prepare_candidates(boolean, boolean) FROM PUBLIC;

COMMENT ON FUNCTION pipeline._prepare_candidates(boolean, boolean) IS
    'Run step 2: this run''s candidate pairs (all, or the scope''s) with their windows and why any is held back, '
    'as the temporary views run_candidate, run_held_back_candidate (those that can be held back) and run_window.';
