-- depends: 0002.seed-milestones
-- Change capture: triggers on the source tables queue the keys they touch, so that a routine
-- run recomputes only what changed. held_back_pair keeps the pairs currently held back, so an
-- incremental run can still report every failure. The first run after this is a full one.
CREATE TABLE pipeline.change_queue (
    change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('patient_journey', 'journey', 'activity', 'schedule', 'full')),
    keys bigint[],
    queued_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pipeline.change_queue IS
    'Keys touched in the source tables since the last run, written by statement-level triggers and drained by the run. '
    'kind full = recompute everything (TRUNCATE, milestone or alias change, install).';
COMMENT ON COLUMN pipeline.change_queue.keys IS
    'Ids of the kind touched by one statement (patient journey, journey, activity or schedule ids); NULL for full.';

INSERT INTO pipeline.change_queue (kind) VALUES ('full');

CREATE TABLE pipeline.held_back_pair (
    patient_journey_id bigint NOT NULL,
    activity_id bigint NOT NULL,
    held_back text NOT NULL,
    schedule_id bigint,
    schedule_slug text,
    milestone_slug text,
    milestone_date date,
    start_offset_days integer,
    end_offset_days integer,
    PRIMARY KEY (patient_journey_id, activity_id)
);

CREATE INDEX held_back_pair_held_back_idx ON pipeline.held_back_pair (held_back);
CREATE INDEX held_back_pair_activity_id_idx ON pipeline.held_back_pair (activity_id);

COMMENT ON TABLE pipeline.held_back_pair IS
    'Pairs the latest runs could not load, and why; the failures of each run are counted from it.';

ALTER TABLE pipeline.settings
    ADD COLUMN work_mem text NOT NULL DEFAULT '256MB';

COMMENT ON COLUMN pipeline.settings.work_mem IS
    'work_mem for the run''s own transaction: room to join and sort millions of pairs in memory.';

ALTER TABLE pipeline.pipeline_runs
    ADD COLUMN mode text CHECK (mode IN ('full', 'incremental', 'noop'));

COMMENT ON COLUMN pipeline.pipeline_runs.mode IS
    'full = every pair recomputed; incremental = only pairs of queued changes; noop = nothing queued.';
