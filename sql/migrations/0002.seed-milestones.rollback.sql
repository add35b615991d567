DELETE FROM pipeline.milestone_alias;
DELETE FROM pipeline.milestone;
