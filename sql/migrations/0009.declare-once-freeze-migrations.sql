-- depends: 0006.trust-change-capture 0007.check-settings-where-they-enter 0008.guard-the-run
-- Issue 9: the held-back reasons are one declared vocabulary, and old routine signatures are
-- dropped here, by a new migration, not by editing a released one.
--
-- The seven reasons a pair is held back were bare strings in two routines, a partial index and
-- a test; a misspelt one matched nothing, silently. As an enum type, a reason the type does not
-- know fails the statement that names it, when it is planned. An enum rather than a table with
-- a foreign key: a foreign key checks every inserted held-back pair with a trigger and a row
-- lock on the reason it names (a million of each when a broken slug holds back a million pairs),
-- and a table would only catch a misspelling when a row carries it. The order is the order in
-- which a run tests them (the first that applies names the pair).
CREATE TYPE pipeline.held_back_reason AS ENUM (
    'missing patient_journey',
    'missing activity',
    'missing schedule',
    'slug does not parse',
    'milestone date column unusable',
    'milestone date is infinite',
    'window date out of range'
);

COMMENT ON TYPE pipeline.held_back_reason IS
    'Why a (patient journey, activity) pair is held back. Counted in held_back_group per patient journey '
    '(missing patient_journey), per activity (missing activity), per activity and schedule (missing schedule), '
    'per schedule (slug does not parse) or per milestone (milestone date column unusable); listed pair by pair '
    'in held_back_pair (milestone date is infinite, window date out of range).';

-- The partial index names two reasons: rebuilt on the type's values.
DROP INDEX pipeline.held_back_pair_pair_problem_idx;
ALTER TABLE pipeline.held_back_pair
    ALTER COLUMN held_back TYPE pipeline.held_back_reason USING held_back::pipeline.held_back_reason;
ALTER TABLE pipeline.held_back_group
    ALTER COLUMN held_back TYPE pipeline.held_back_reason USING held_back::pipeline.held_back_reason;
CREATE INDEX held_back_pair_pair_problem_idx ON pipeline.held_back_pair (held_back)
    WHERE held_back IN ('milestone date is infinite', 'window date out of range');

-- Signatures of routines that changed or went since release 0003 (which used to drop them, and
-- was edited each time one was added). IF EXISTS: a database that ran the old 0003 no longer
-- has them. migrate re-creates the current routines after the migrations. From now on, a
-- routine whose signature changes has its old one dropped by the migration of that release
-- (docs/migrations.md).
DROP PROCEDURE IF EXISTS pipeline.run_patient_journey_pipeline(text);
DROP FUNCTION IF EXISTS pipeline._execute_run(bigint);
DROP FUNCTION IF EXISTS pipeline._collect_candidates();
DROP FUNCTION IF EXISTS pipeline._record_held_back(bigint);
DROP FUNCTION IF EXISTS pipeline._write_windows(bigint, bigint);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint);
DROP FUNCTION IF EXISTS pipeline._write_windows(text, bigint, bigint);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, text);
DROP FUNCTION IF EXISTS pipeline._candidate_query(boolean, boolean);
