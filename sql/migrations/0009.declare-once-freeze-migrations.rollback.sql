-- The held-back reasons become text again. The old signatures stay dropped: the older
-- release's migrate re-creates the routines it has.
DROP INDEX pipeline.held_back_pair_pair_problem_idx;
ALTER TABLE pipeline.held_back_pair ALTER COLUMN held_back TYPE text;
ALTER TABLE pipeline.held_back_group ALTER COLUMN held_back TYPE text;
CREATE INDEX held_back_pair_pair_problem_idx ON pipeline.held_back_pair (held_back)
    WHERE held_back IN ('milestone date is infinite', 'window date out of range');
DROP TYPE pipeline.held_back_reason;
