ALTER TABLE campaigns DROP COLUMN payout_kind;
ALTER TABLE campaigns DROP COLUMN status_before_pause;
ALTER TABLE campaigns DROP COLUMN raw_hash;
ALTER TABLE sync_runs DROP COLUMN filtered;
ALTER TABLE sync_runs DROP COLUMN accepted_removals;
ALTER TABLE sync_runs DROP COLUMN listed;
