ALTER TABLE integrations DROP COLUMN applied_policy;
ALTER TABLE campaigns DROP COLUMN removed_as;
ALTER TABLE campaign_changes DROP COLUMN cause;
DROP TABLE sync_warnings;
ALTER TABLE sync_runs DROP COLUMN drift_corrected, DROP COLUMN warnings;
DROP TRIGGER campaigns_mark_drift ON campaigns;
DROP FUNCTION offersync_mark_drift();
ALTER TABLE campaigns DROP COLUMN applied_hash, DROP COLUMN drifted, DROP COLUMN write_token;
