-- Parse every schedule's slug once, each in its own exception block, into pg_temp.run_schedule.
-- A slug that fails keeps its error there; the other schedules are unaffected.
CREATE OR REPLACE FUNCTION pipeline._parse_schedules()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pipeline, pg_temp
AS $$
DECLARE
    v_schedule record;
    v_window record;
    ex_sqlstate text;
    ex_message text;
    ex_hint text;
BEGIN
    CREATE TEMP TABLE run_schedule (
        schedule_id bigint PRIMARY KEY,
        schedule_slug text,
        start_offset_days integer,
        end_offset_days integer,
        milestone_slug text,
        sqlstate text,
        error_message text,
        error_detail text
    ) ON COMMIT DROP;
    -- plpgsql_check cannot run the CREATE above: the pragma tells it the table (a no-op when run)
    PERFORM 'PRAGMA:TABLE: pg_temp.run_schedule (schedule_id bigint, schedule_slug text, start_offset_days integer, '
            'end_offset_days integer, milestone_slug text, sqlstate text, error_message text, error_detail text)';

    -- DISTINCT ON: a duplicated schedule id must not duplicate pairs downstream. COLLATE "C":
    -- the copy kept is the first byte for byte, whatever the column's collation (two slugs a
    -- nondeterministic one calls equal would be kept in the rows' order, which an UPDATE that
    -- changes no value, and so queues nothing, can change), and the slug reaches the parser in
    -- a collation its regular expressions accept.
    FOR v_schedule IN
        SELECT DISTINCT ON (s.id) s.id, s.slug COLLATE "C" AS slug
        FROM public.schedule AS s
        WHERE s.id IS NOT NULL
        ORDER BY s.id, s.slug COLLATE "C"
    LOOP
        BEGIN
            SELECT * INTO STRICT v_window FROM pipeline.parse_schedule_slug(v_schedule.slug);
            INSERT INTO pg_temp.run_schedule
            VALUES (v_schedule.id, v_schedule.slug, v_window.start_offset_days,
                    v_window.end_offset_days, v_window.milestone_slug);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS ex_sqlstate = RETURNED_SQLSTATE,
                                    ex_message = MESSAGE_TEXT,
                                    ex_hint = PG_EXCEPTION_HINT;
            INSERT INTO pg_temp.run_schedule (schedule_id, schedule_slug, sqlstate, error_message, error_detail)
            VALUES (v_schedule.id, v_schedule.slug, ex_sqlstate, ex_message, nullif(ex_hint, ''));
        END;
    END LOOP;
    ANALYZE pg_temp.run_schedule;
END;
$$;

COMMENT ON FUNCTION pipeline._parse_schedules() IS
    'Run step 1: parses each public.schedule slug once into the temp table run_schedule, keeping failures.';
