ALTER TABLE pipeline.settings DROP CONSTRAINT settings_work_mem_from_64kb_to_2gb;
ALTER TABLE pipeline.settings DROP CONSTRAINT settings_retention_at_most_100_years;
COMMENT ON COLUMN pipeline.settings.retention IS
    'Runs and failures older than this are purged by the next run.';
COMMENT ON COLUMN pipeline.settings.work_mem IS
    'work_mem for the run''s own transaction: room to join and sort millions of pairs in memory.';
