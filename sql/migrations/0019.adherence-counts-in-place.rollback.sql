ALTER TABLE pipeline.adherence_group RESET (fillfactor);
CREATE INDEX adherence_group_empty_idx ON pipeline.adherence_group (activity_id) WHERE pairs = 0;
