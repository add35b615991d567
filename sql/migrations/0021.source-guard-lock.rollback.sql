DROP TABLE pipeline.source_guard_lock;
