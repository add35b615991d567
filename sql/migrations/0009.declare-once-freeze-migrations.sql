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

-- Releases before 0006 enabled the statement-level capture triggers ALWAYS, to capture writes
-- made in session_replication_role = replica; the row-level pipeline_capture_replica does that
-- now, and a statement-level trigger left ALWAYS would queue a replica-mode session's keys a
-- second time. Re-enabled plainly, as a fresh install has them, where the migrating role owns
-- the table (elsewhere only the owner may, and both capture the same). The next run is full:
-- the triggers' catalog rows changed.
DO $$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT t.tgrelid::regclass AS table_name, t.tgname
        FROM pg_trigger AS t
        JOIN pg_class AS c ON c.oid = t.tgrelid
        WHERE t.tgfoid = to_regprocedure('pipeline._capture_changes()')  -- NULL on a fresh install
          AND t.tgenabled = 'A'
          AND t.tgname IN ('pipeline_capture_changes', 'pipeline_capture_insert',
                           'pipeline_capture_update', 'pipeline_capture_delete')
          AND pg_has_role(c.relowner, 'USAGE')
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', v_trigger.table_name, v_trigger.tgname);
    END LOOP;
END
$$;

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
