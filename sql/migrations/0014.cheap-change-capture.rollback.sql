ALTER TABLE pipeline.change_queue
    ADD COLUMN change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
-- a row of a kind the CHECK refuses becomes a full run, as 0014's drain would have made it
UPDATE pipeline.change_queue SET kind = 'full', keys = NULL
WHERE kind NOT IN ('patient_journey', 'journey', 'activity', 'schedule', 'full');
ALTER TABLE pipeline.change_queue
    ADD CONSTRAINT change_queue_kind_check
        CHECK (kind IN ('patient_journey', 'journey', 'activity', 'schedule', 'full'));
COMMENT ON TABLE pipeline.change_queue IS
    'Keys touched in the source tables since the last run, written by statement-level triggers and drained by the run. '
    'kind full = recompute everything (TRUNCATE, milestone or alias change, install).';
