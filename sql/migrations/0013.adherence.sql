-- depends: 0012.sla
-- Issue 10: adherence. The window table says when each activity is due; this release adds the
-- other half, whether the patient did it in time (pipeline.adherence, pipeline.activity_adherence,
-- created by migrate from sql/procedures/). The run keeps what the statuses need in the rows
-- it writes, so that a report reads the pipeline's own tables once and never the app's:
--   patient_journey_schedule_window.result_count, completed_on: the pair's survey results and
--     the date that decides a done_* status, as of the run;
--   patient_journey_schedule_window.retired_at: set by the run that notices the pair has left
--     the source (its row stays), cleared when it comes back;
--   held_back_pair.patient_id, activity_content_slug, result_count: so that a held-back pair is
--     reported with its patient, activity and results too.
--
-- report_time_zone decides the calendar date of a survey result and what "today" is, so that a
-- report never depends on the session's TimeZone. It is checked where it enters: a name the
-- server's time zone database knows (pg_timezone_names), so no POSIX offset ('UTC+5' is five
-- hours WEST of Greenwich), and no name that is also a time zone abbreviation: AT TIME ZONE
-- looks a name up among the session's abbreviations (timezone_abbreviations, which any session
-- may set) before the time zone database, so 'CET' would mean UTC+1 all year, not the zone
-- with summer time, and 'EST' UTC-5 or, in a session set to 'Australia', UTC+10: a runner
-- could move every result to another day. Checked against the abbreviation sets PostgreSQL
-- ships; UTC, GMT, UCT and Zulu mean UTC in all of them, as zones do.
CREATE FUNCTION pipeline._is_time_zone_name(p_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the set_config calls below change this setting only until the function returns
SET timezone_abbreviations = 'Default'
AS $$
DECLARE
    v_set text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_timezone_names AS z WHERE z.name OPERATOR(pg_catalog.=) p_name) THEN
        RETURN false;
    END IF;
    IF p_name OPERATOR(pg_catalog.=) ANY (ARRAY['UTC', 'GMT', 'UCT', 'Zulu']) THEN
        RETURN true;
    END IF;
    FOREACH v_set IN ARRAY ARRAY['Default', 'Australia', 'India'] LOOP
        PERFORM pg_catalog.set_config('timezone_abbreviations', v_set, true);
        IF EXISTS (SELECT FROM pg_catalog.pg_timezone_abbrevs AS a
                   WHERE pg_catalog.lower(a.abbrev) OPERATOR(pg_catalog.=) pg_catalog.lower(p_name)) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END;
$$;

COMMENT ON FUNCTION pipeline._is_time_zone_name(text) IS
    'True when the name is in pg_timezone_names (e.g. ''UTC'', ''Europe/Zurich'') and is no time zone abbreviation '
    '(''EST'', ''CET''), which AT TIME ZONE would read by the session''s timezone_abbreviations; '
    'the check of settings.report_time_zone.';

ALTER TABLE pipeline.settings
    ADD COLUMN report_time_zone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT settings_report_time_zone_is_a_time_zone_name
        CHECK (pipeline._is_time_zone_name(report_time_zone));

COMMENT ON CONSTRAINT settings_report_time_zone_is_a_time_zone_name ON pipeline.settings IS
    'report_time_zone is a name of pg_timezone_names: a run converts survey result times with it.';
COMMENT ON COLUMN pipeline.settings.report_time_zone IS
    'Time zone of adherence: the date of a survey result and what "today" is. A name of pg_timezone_names '
    '(e.g. ''Europe/Zurich''); default ''UTC''. Changing a setting queues a full run, which re-dates every result.';

ALTER TABLE pipeline.patient_journey_schedule_window
    ADD COLUMN retired_at timestamptz,
    ADD COLUMN result_count integer NOT NULL DEFAULT 0,
    ADD COLUMN completed_on date,
    ADD COLUMN held_back boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN pipeline.patient_journey_schedule_window.retired_at IS
    'When a run found the pair gone from the source (the row stays); NULL while the source has it.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.result_count IS
    'Survey results of the pair (public.survey_result rows with its patient_journey_id and activity_id), as of the run.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.completed_on IS
    'Date (in settings.report_time_zone) of the result that decides a done_* status: the first in the window, '
    'else the first after it, else the last before it; NULL with no dated result or no window.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.held_back IS
    'True while the pipeline holds the pair back (it is in held_back_pair, which adherence reports instead of '
    'this older row); false once a run loads the pair again.';

ALTER TABLE pipeline.held_back_pair
    ADD COLUMN patient_id bigint,
    ADD COLUMN activity_content_slug text,
    ADD COLUMN result_count integer NOT NULL DEFAULT 0;

-- The rows written before this release have no results yet: the next run is full.
INSERT INTO pipeline.change_queue (kind) VALUES ('full');
