-- Schema, settings, milestone tables, the window table and the run/failure logs.
CREATE SCHEMA IF NOT EXISTS pipeline;

COMMENT ON SCHEMA pipeline IS
    'Patient-journey schedule pipeline: builds patient_journey_schedule_window from the app''s tables in public.';

CREATE TABLE pipeline.settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    retention interval NOT NULL DEFAULT interval '30 days' CHECK (retention >= interval '1 hour')
);

COMMENT ON TABLE pipeline.settings IS
    'One row of tunables, changed with UPDATE; read by every run.';
COMMENT ON COLUMN pipeline.settings.retention IS
    'Runs and failures older than this are purged by the next run.';

INSERT INTO pipeline.settings DEFAULT VALUES;

CREATE TABLE pipeline.milestone (
    milestone_slug text PRIMARY KEY CHECK (milestone_slug ~ '^[a-z][a-z_]*$'),
    date_column text NULL
);

COMMENT ON TABLE pipeline.milestone IS
    'Each canonical milestone and the public.patient_journey column holding its date.';
COMMENT ON COLUMN pipeline.milestone.date_column IS
    'Column of public.patient_journey (date or timestamp); NULL = the source has no date, so window dates stay NULL.';

CREATE TABLE pipeline.milestone_alias (
    alias text PRIMARY KEY
        CHECK (alias ~ '^[a-z]+$' AND alias NOT IN ('pre', 'post', 'po', 'always')),
    milestone_slug text NOT NULL REFERENCES pipeline.milestone ON UPDATE CASCADE
);

COMMENT ON TABLE pipeline.milestone_alias IS
    'Words a schedule slug may use for a milestone; add a row to teach the parser a new word.';
COMMENT ON COLUMN pipeline.milestone_alias.alias IS
    'Lower-case letters only; slugs are matched case-insensitively.';

CREATE TABLE pipeline.patient_journey_schedule_window (
    patient_id bigint,
    patient_journey_id bigint NOT NULL,
    activity_id bigint NOT NULL,
    activity_content_slug text,
    schedule_id bigint,
    schedule_slug text,
    schedule_start_offset_days integer,
    schedule_end_offset_days integer,
    schedule_milestone_slug text,
    milestone_date date,
    window_start_date date,
    window_end_date date,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_journey_id, activity_id)
);

COMMENT ON TABLE pipeline.patient_journey_schedule_window IS
    'Output: one row per (patient journey, activity) pair with the dates its activity is due. '
    'Append-and-update: rows whose pair left the source stay.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.schedule_slug IS
    'The slug as stored in public.schedule, not normalised.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.schedule_start_offset_days IS
    'First day of the window in days from the milestone (negative = before); NULL = no first day.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.schedule_end_offset_days IS
    'Last day of the window in days from the milestone; NULL = open-ended.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.milestone_date IS
    'Calendar date of the milestone for this patient journey; NULL when unknown.';
COMMENT ON COLUMN pipeline.patient_journey_schedule_window.updated_at IS
    'Moves only when a value of the row changed.';

CREATE TABLE pipeline.pipeline_runs (
    run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger text NOT NULL DEFAULT 'manual',
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'aborted')),
    rows_inserted bigint NOT NULL DEFAULT 0,
    rows_updated bigint NOT NULL DEFAULT 0,
    rows_held_back bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    backend_pid integer NOT NULL DEFAULT pg_backend_pid(),
    run_by text NOT NULL DEFAULT current_user,
    error_message text
);

CREATE INDEX pipeline_runs_started_at_idx ON pipeline.pipeline_runs (started_at);

COMMENT ON TABLE pipeline.pipeline_runs IS
    'One row per run. succeeded = loaded what it could (data failures are in pipeline_failures); '
    'failed = the run itself broke; skipped = another run held the pipeline; aborted = the run died.';
COMMENT ON COLUMN pipeline.pipeline_runs.trigger IS 'Who started the run: cron, manual, ...';
COMMENT ON COLUMN pipeline.pipeline_runs.rows_held_back IS
    'Pairs not loaded this run because of a failure (see pipeline_failures).';
COMMENT ON COLUMN pipeline.pipeline_runs.failures IS 'Rows this run wrote to pipeline_failures.';
COMMENT ON COLUMN pipeline.pipeline_runs.error_message IS 'Why a failed or aborted run ended.';

CREATE TABLE pipeline.pipeline_failures (
    failure_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL REFERENCES pipeline.pipeline_runs ON DELETE CASCADE,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    stage text NOT NULL CHECK (stage IN ('parse', 'match', 'load', 'run')),
    schedule_id bigint,
    schedule_slug text,
    patient_journey_id bigint,
    activity_id bigint,
    sqlstate text,
    error_message text NOT NULL,
    error_detail text,
    error_context text,
    rows_held_back bigint NOT NULL DEFAULT 0
);

CREATE INDEX pipeline_failures_run_id_idx ON pipeline.pipeline_failures (run_id);
CREATE INDEX pipeline_failures_failed_at_idx ON pipeline.pipeline_failures (failed_at);

COMMENT ON TABLE pipeline.pipeline_failures IS
    'Append-only log: one row per problem per run. Purged after settings.retention.';
COMMENT ON COLUMN pipeline.pipeline_failures.stage IS
    'parse = schedule slug; match = missing reference; load = a row that could not be written; run = the run itself.';
COMMENT ON COLUMN pipeline.pipeline_failures.rows_held_back IS
    'How many (patient journey, activity) pairs this failure kept out of the window table.';

CREATE VIEW pipeline.current_failures AS
SELECT f.*
FROM pipeline.pipeline_failures AS f
WHERE f.run_id = (
    SELECT r.run_id
    FROM pipeline.pipeline_runs AS r
    WHERE r.status IN ('succeeded', 'failed')
    ORDER BY r.run_id DESC
    LIMIT 1
);

COMMENT ON VIEW pipeline.current_failures IS
    'Failures of the latest finished run that was not skipped: what is failing now.';
