-- depends: 0005.record-who-ran
-- Issue 8: change capture could miss changes without noticing (logical replication, a trigger
-- disabled and enabled again by the tables' owner, a trigger replaced by one of the same name).
--
-- change_capture_state holds what the latest succeeded full run saw of each watched table: its
-- oid, the version (oid and pg_trigger xmin) of every capture trigger, the version of its
-- columns, and whether a subscription replicates into it. Every ALTER TABLE ... ENABLE /
-- DISABLE TRIGGER, CREATE OR REPLACE TRIGGER and column DDL writes a new catalog row version,
-- so a routine run that finds anything else cannot trust the queue and runs full. Empty here,
-- so the next run is a full one, which records it.
CREATE TABLE pipeline.change_capture_state (
    table_name text PRIMARY KEY,
    table_oid oid,
    triggers text,
    columns text,
    subscribed boolean NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pipeline.change_capture_state IS
    'What the latest succeeded full run saw of each watched table (oid, capture triggers and columns as '
    'catalog row versions, subscribed or not); a routine run that sees anything else runs full.';
COMMENT ON COLUMN pipeline.change_capture_state.triggers IS
    'name oid xmin enabled of each change-capture trigger, from pg_trigger.';
COMMENT ON COLUMN pipeline.change_capture_state.columns IS
    'attnum:xmin of each column, from pg_attribute: a type change or rewrite that no trigger sees.';
COMMENT ON COLUMN pipeline.change_capture_state.recorded_at IS
    'When the full run that recorded it started its work.';

ALTER TABLE pipeline.settings
    ADD COLUMN full_run_every interval DEFAULT interval '1 day'
        CONSTRAINT settings_full_run_every_check
        CHECK (full_run_every IS NULL
               OR (full_run_every >= interval '1 hour' AND full_run_every <= interval '366 days'));

COMMENT ON COLUMN pipeline.settings.full_run_every IS
    'Safety net: a routine run is a full run when the last succeeded full run is older than this, whatever '
    'change capture says (covers DDL and writes no trigger sees). 1 hour to 366 days; NULL turns it off.';

-- Its result gained a column; migrate re-creates it.
DROP FUNCTION IF EXISTS pipeline.install_change_capture();
