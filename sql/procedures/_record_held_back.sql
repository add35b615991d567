-- Bring pipeline.held_back_pair up to date with the recomputed pairs (all of them, or those of
-- the incremental scope when p_scoped), then write one failure row per problem it holds: per broken
-- schedule, per missing reference, per unusable milestone, per out-of-range row.
-- Returns how many pairs are held back now.
CREATE OR REPLACE FUNCTION pipeline._record_held_back(p_run_id bigint, p_scoped boolean, p_candidates text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_held_back bigint;
BEGIN
    IF p_scoped THEN
        DELETE FROM pipeline.held_back_pair AS h
        WHERE h.patient_journey_id IN (SELECT s.patient_journey_id FROM pg_temp.run_scope AS s);
        DELETE FROM pipeline.held_back_pair AS h
        WHERE h.activity_id IN (SELECT s.activity_id FROM pg_temp.run_scope_activity AS s);
    ELSE
        -- held_back_pair is the pipeline's own, and the advisory lock keeps other runs out
        TRUNCATE pipeline.held_back_pair;
    END IF;
    EXECUTE format(
        'INSERT INTO pipeline.held_back_pair '
        '    (patient_journey_id, activity_id, held_back, schedule_id, schedule_slug, milestone_slug, '
        '     milestone_date, start_offset_days, end_offset_days) '
        'SELECT c.patient_journey_id, c.activity_id, c.held_back, c.schedule_id, c.schedule_slug, '
        '       c.milestone_slug, c.milestone_date, c.start_offset_days, c.end_offset_days '
        'FROM (%s) AS c WHERE c.held_back IS NOT NULL', p_candidates);

    INSERT INTO pipeline.pipeline_failures
        (run_id, stage, schedule_id, schedule_slug, patient_journey_id, activity_id,
         sqlstate, error_message, error_detail, rows_held_back)
    -- Every slug that does not parse, even one no pair uses yet: it is broken now.
    SELECT p_run_id, 'parse', s.schedule_id, s.schedule_slug, NULL::bigint, NULL::bigint,
           s.sqlstate, s.error_message, s.error_detail, coalesce(h.pairs, 0)
    FROM pg_temp.run_schedule AS s
    LEFT JOIN (
        SELECT h.schedule_id, count(*) AS pairs
        FROM pipeline.held_back_pair AS h
        WHERE h.held_back = 'slug does not parse'
        GROUP BY h.schedule_id
    ) AS h ON h.schedule_id = s.schedule_id
    WHERE s.error_message IS NOT NULL
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, h.patient_journey_id, NULL,
           '23503', format('patient journey %s does not exist; survey_result rows reference it', h.patient_journey_id),
           NULL, count(*)
    FROM pipeline.held_back_pair AS h
    WHERE h.held_back = 'missing patient_journey'
    GROUP BY h.patient_journey_id
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, NULL, h.activity_id,
           '23503', format('activity %s does not exist; journey_activity or survey_result rows reference it', h.activity_id),
           NULL, count(*)
    FROM pipeline.held_back_pair AS h
    WHERE h.held_back = 'missing activity'
    GROUP BY h.activity_id
    UNION ALL
    SELECT p_run_id, 'match', h.schedule_id, NULL, NULL, NULL,
           '23503', format('schedule %s does not exist; activities %s reference it',
                           h.schedule_id, string_agg(DISTINCT h.activity_id::text, ', ')),
           NULL, count(*)
    FROM pipeline.held_back_pair AS h
    WHERE h.held_back = 'missing schedule'
    GROUP BY h.schedule_id
    UNION ALL
    SELECT p_run_id, 'match', NULL, NULL, NULL, NULL,
           '42703', format('milestone %s: its date column %s is not a date or timestamp column of public.patient_journey',
                           m.milestone_slug, m.date_column),
           'Fix it with UPDATE pipeline.milestone SET date_column = ... WHERE milestone_slug = ...',
           (SELECT count(*) FROM pipeline.held_back_pair AS h
            WHERE h.milestone_slug = m.milestone_slug AND h.held_back = 'milestone date column unusable')
    FROM pipeline._milestone_date_columns() AS m
    WHERE NOT m.usable
    UNION ALL
    SELECT p_run_id, 'load', h.schedule_id, h.schedule_slug, h.patient_journey_id, h.activity_id,
           '22008', format('%s: milestone %s on %s with offsets %s to %s',
                           h.held_back, h.milestone_slug, h.milestone_date,
                           coalesce(h.start_offset_days::text, 'open'), coalesce(h.end_offset_days::text, 'open')),
           NULL, 1
    FROM pipeline.held_back_pair AS h
    WHERE h.held_back IN ('milestone date is infinite', 'window date out of range');

    SELECT count(*) INTO v_held_back FROM pipeline.held_back_pair;
    RETURN v_held_back;
END;
$$;

COMMENT ON FUNCTION pipeline._record_held_back(bigint, boolean, text) IS
    'Run step 3: logs each problem of the run to pipeline_failures with the pairs it held back; returns their total.';
