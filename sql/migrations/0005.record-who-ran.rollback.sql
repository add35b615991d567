ALTER TABLE pipeline.pipeline_runs ALTER COLUMN run_by SET DEFAULT current_user;
COMMENT ON COLUMN pipeline.pipeline_runs.run_by IS NULL;
