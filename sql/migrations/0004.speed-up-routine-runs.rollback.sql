DROP TABLE pipeline.held_back_group;
DROP INDEX pipeline.held_back_pair_pair_problem_idx;
CREATE INDEX held_back_pair_held_back_idx ON pipeline.held_back_pair (held_back);
ALTER TABLE pipeline.change_queue ALTER COLUMN keys SET STORAGE EXTENDED;
