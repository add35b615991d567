-- The patient app's tables as docs/source-tables.md describes them: no foreign keys, mostly nullable.
-- Used by the demo and the tests; in production these tables already exist.
CREATE TABLE IF NOT EXISTS public.patient (id bigint, age_bracket text, sex text, hospital text);
CREATE TABLE IF NOT EXISTS public.journey (id bigint, abbreviation text, joint_slug text);
CREATE TABLE IF NOT EXISTS public.schedule (id bigint, slug text);
CREATE TABLE IF NOT EXISTS public.activity (id bigint, content_slug text, schedule_id bigint);
CREATE TABLE IF NOT EXISTS public.journey_activity (journey_id bigint, activity_id bigint);
CREATE TABLE IF NOT EXISTS public.patient_journey (
    id bigint,
    patient_id bigint,
    journey_id bigint,
    invitation_date date,
    registration_date date,
    operation_date timestamp,
    discharge_date date,
    consent_date timestamp,
    clinician_id bigint
);
CREATE TABLE IF NOT EXISTS public.survey (id bigint, slug text, version text, tags text[]);
CREATE TABLE IF NOT EXISTS public.survey_result (
    id bigint,
    patient_journey_id bigint,
    survey_id bigint,
    activity_id bigint,
    device_id bigint,
    score_value numeric,
    start_time timestamptz,
    end_time timestamptz
);
CREATE TABLE IF NOT EXISTS public.device (id bigint, platform text, os_version text);
CREATE TABLE IF NOT EXISTS public.step_result (patient_id bigint, date date, value numeric);

-- The look-ups an incremental run makes (pipeline._missing_source_indexes); an app has them
-- for its own queries too. The one on survey_result.patient_journey_id holds what a run reads
-- of a result, so that a rescheduled journey's results come from the index, not from a table
-- page each (results arrive over weeks, between everyone else's).
CREATE INDEX IF NOT EXISTS patient_journey_id_idx ON public.patient_journey (id);
CREATE INDEX IF NOT EXISTS patient_journey_journey_id_idx ON public.patient_journey (journey_id);
CREATE INDEX IF NOT EXISTS survey_result_patient_journey_id_idx
    ON public.survey_result (patient_journey_id) INCLUDE (activity_id, start_time, end_time);
CREATE INDEX IF NOT EXISTS survey_result_activity_id_idx ON public.survey_result (activity_id);
