-- A realistic sample for the demo: a few journeys, activities on schedules that use every form
-- of the slug grammar (and a few broken slugs), 400 patient journeys, survey results, and some
-- orphans. Deterministic: the same rows every time.
TRUNCATE public.patient, public.journey, public.schedule, public.activity, public.journey_activity,
         public.patient_journey, public.survey, public.survey_result, public.device, public.step_result;

INSERT INTO public.journey (id, abbreviation, joint_slug) VALUES
    (1, 'THR', 'hip'), (2, 'TKR', 'knee'), (3, 'TSR', 'shoulder');

INSERT INTO public.schedule (id, slug) VALUES
    (1, '4d-2d-pre-op'), (2, '1d-7d-post-op'), (3, '2w-6w-post-dis'), (4, '42d-pre-op'),
    (5, '3m-post-op'), (6, '7d-op'), (7, '2w-pre-6w-post-op'), (8, '1d-pre-1dpo'),
    (9, '6wpo'), (10, 'op-10d-post-op'), (11, 'op-3d-pre-op'), (12, '4d-op-pre-op'),
    (13, '4d-op-post-op'), (14, 'pre-op'), (15, 'post-op'), (16, 'reg'), (17, 'reg-d0'),
    (18, 'op-d14'), (19, 'always'), (20, '1m-0d-pre-op'), (21, '12d-4w-post-op'),
    (22, '1y-post-op'), (23, 'inv-d7'), (24, 'consent'), (25, '2d-post-appt'),
    -- broken on purpose: each becomes one failure row and holds back only its own pairs
    (90, '7d-post-surgery'), (91, '3q-pre-op'), (92, 'reg-10d-post-op'), (93, '3m-1d-post-op');

INSERT INTO public.activity (id, content_slug, schedule_id)
SELECT n, format('activity-%s', n), CASE WHEN n <= 25 THEN n ELSE 89 + (n - 25) END
FROM generate_series(1, 29) AS n;
INSERT INTO public.activity (id, content_slug, schedule_id) VALUES
    (30, 'welcome-video', NULL),          -- no schedule: loads with NULL schedule fields
    (31, 'retired-survey', 999);          -- orphan: schedule 999 does not exist

INSERT INTO public.journey_activity (journey_id, activity_id)
SELECT j, a
FROM generate_series(1, 3) AS j, generate_series(1, 31) AS a
WHERE (a + j) % 3 <> 0 OR a > 25;
INSERT INTO public.journey_activity (journey_id, activity_id) VALUES (1, 777);  -- orphan activity

INSERT INTO public.patient (id, age_bracket, sex, hospital)
SELECT n, (ARRAY['18-39', '40-59', '60-79', '80+'])[1 + n % 4], (ARRAY['F', 'M'])[1 + n % 2],
       (ARRAY['St Mary', 'Royal Infirmary', 'General'])[1 + n % 3]
FROM generate_series(1, 380) AS n;

INSERT INTO public.patient_journey
    (id, patient_id, journey_id, invitation_date, registration_date, operation_date,
     discharge_date, consent_date, clinician_id)
SELECT n, 1 + n % 380, 1 + n % 3, op - 40, op - 35 + n % 5,
       CASE WHEN n % 25 = 0 THEN NULL ELSE (op + time '08:30')::timestamp END,  -- some not yet booked
       CASE WHEN n % 25 = 0 THEN NULL ELSE op + 2 + n % 4 END,
       (op - 20)::timestamp, 1 + n % 12
FROM generate_series(1, 400) AS n,
     LATERAL (SELECT DATE '2025-01-06' + (n * 37) % 700 AS op) AS d;

INSERT INTO public.survey (id, slug, version, tags) VALUES
    (1, 'oxford-hip-score', '1', '{prom}'), (2, 'oxford-knee-score', '1', '{prom}'),
    (3, 'eq-5d-5l', '2', '{prom,quality-of-life}');
INSERT INTO public.device (id, platform, os_version) VALUES (1, 'ios', '17.2'), (2, 'android', '14');

INSERT INTO public.survey_result
    (id, patient_journey_id, survey_id, activity_id, device_id, score_value, start_time, end_time)
SELECT n, 1 + n % 400, 1 + n % 3, 1 + n % 25, 1 + n % 2, (n * 7) % 48,
       TIMESTAMPTZ '2025-02-01 09:00+00' + n * interval '3 hours',
       TIMESTAMPTZ '2025-02-01 09:00+00' + n * interval '3 hours' + interval '6 minutes'
FROM generate_series(1, 1200) AS n;
INSERT INTO public.survey_result (id, patient_journey_id, survey_id, activity_id) VALUES
    (5001, 9999, 1, 1),      -- orphan: patient journey 9999 does not exist
    (5002, 12, 1, 28);       -- a survey on activity 28 that the journey does not prescribe
