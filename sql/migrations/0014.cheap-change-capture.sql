-- depends: 0013.adherence
-- Issue 12, target 5: change capture runs on every application statement, and the queue row
-- each one writes paid for more than the row: an identity (a sequence read and, every 32
-- values, logged), its primary key index, a CHECK constraint on kind (its expression prepared
-- for every statement) and a queued_at default. Nothing reads them: the run takes the whole
-- queue with DELETE ... RETURNING, in no order. The queue keeps kind and keys only; a kind the
-- run does not know (the CHECK used to refuse it) now makes that run full
-- (pipeline._drain_changes). The queue stays logged: a change it holds survives a crash.
ALTER TABLE pipeline.change_queue
    DROP CONSTRAINT change_queue_kind_check,
    DROP COLUMN change_id,
    DROP COLUMN queued_at;

COMMENT ON TABLE pipeline.change_queue IS
    'Keys touched in the source tables since the last run, written by statement-level triggers and drained by the run. '
    'kind full = recompute everything (TRUNCATE, milestone or alias change, install); a kind the run does not know, too.';
