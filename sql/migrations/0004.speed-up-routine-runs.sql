-- depends: 0003.add-change-capture
-- Issue 3: routine runs whose cost follows the change, and cheaper change capture.
--
-- An incremental run's failure counts must follow the change, not the table: the pairs held
-- back for a reason many share (a slug that does not parse, a missing reference, an unusable
-- milestone) are counted per group here, and each run adds what it held back and subtracts
-- what it released, instead of counting all of held_back_pair again.
CREATE TABLE pipeline.held_back_group (
    held_back text NOT NULL,
    schedule_id bigint,
    patient_journey_id bigint,
    activity_id bigint,
    milestone_slug text,
    pairs bigint NOT NULL,
    CONSTRAINT held_back_group_key
        UNIQUE NULLS NOT DISTINCT (held_back, schedule_id, patient_journey_id, activity_id, milestone_slug)
);

COMMENT ON TABLE pipeline.held_back_group IS
    'How many pairs of held_back_pair each failure holds back, kept current by every run; '
    'a column is set only where it names the failure (e.g. schedule_id for a slug that does not parse).';

-- held_back_pair is read by reason only for the problems of one pair each, which are few; a
-- partial index serves those reads without slowing the insert of every held-back pair.
DROP INDEX pipeline.held_back_pair_held_back_idx;
CREATE INDEX held_back_pair_pair_problem_idx ON pipeline.held_back_pair (held_back)
    WHERE held_back IN ('milestone date is infinite', 'window date out of range');

-- The application pays for change capture: compressing a bulk statement's array of keys
-- cost more than capturing them (a 50,000-row insert: +20% with compression, +5% without).
-- Queue rows live until the next run, so their size hardly matters.
ALTER TABLE pipeline.change_queue ALTER COLUMN keys SET STORAGE EXTERNAL;

-- The groups start empty, so the next run is a full one, which counts them.
INSERT INTO pipeline.change_queue (kind) VALUES ('full');
