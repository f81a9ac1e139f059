ALTER TABLE sync_runs DROP COLUMN filtered;
ALTER TABLE sync_runs DROP COLUMN accepted_removals;
ALTER TABLE sync_runs DROP COLUMN listed;
