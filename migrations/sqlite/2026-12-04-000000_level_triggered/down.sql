ALTER TABLE campaigns DROP COLUMN removed_as;
ALTER TABLE campaign_changes DROP COLUMN cause;
DROP TABLE sync_warnings;
ALTER TABLE sync_runs DROP COLUMN warnings;
ALTER TABLE sync_runs DROP COLUMN drift_corrected;
DROP TRIGGER campaigns_mark_drift;
ALTER TABLE campaigns DROP COLUMN write_token;
ALTER TABLE campaigns DROP COLUMN drifted;
ALTER TABLE campaigns DROP COLUMN applied_hash;
