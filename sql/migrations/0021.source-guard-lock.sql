-- depends: 0020.remember-repeated-ids
-- What a run and the event trigger pipeline_source_guard wait for each other on: the guard
-- takes it ROW EXCLUSIVE, until the command's transaction ends, for a command on a source
-- relation or on any child table (one that a concurrent command could make part of a source
-- table); a run takes it SHARE before it checks the source tables and keeps it until its
-- reads are done. So none of those commands commits between a run's check and its reads,
-- where two concurrent ones, neither seeing the other, could together plant what each alone
-- would be refused. No rows, and no role but the owner may lock it.
CREATE TABLE pipeline.source_guard_lock ();
REVOKE ALL ON pipeline.source_guard_lock FROM PUBLIC;

COMMENT ON TABLE pipeline.source_guard_lock IS
    'No rows: a run holds it SHARE from its check of the source tables to the end of its reads; '
    'the event trigger pipeline_source_guard takes it ROW EXCLUSIVE for DDL on a source or child table.';
