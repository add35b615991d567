-- depends: 0018.parallel-full-runs
-- The adherence counts' groups are updated in place (heap-only updates: no new index entry):
-- the partial index of the emptied groups named the column every count changes, so each
-- update of a group wrote new entries in both indexes. The trigger now drops the groups it
-- emptied by their row ids (pipeline._count_adherence_groups); pages filled to 70% keep room
-- for the new versions (the fillfactor applies to pages written from now on: migrate's last
-- step, pipeline._install_adherence_counts, writes every group again).
DROP INDEX pipeline.adherence_group_empty_idx;
ALTER TABLE pipeline.adherence_group SET (fillfactor = 70);
