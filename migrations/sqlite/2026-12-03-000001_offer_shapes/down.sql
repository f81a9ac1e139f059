ALTER TABLE campaigns DROP COLUMN revenue_max;
ALTER TABLE campaigns DROP COLUMN payout_max;
ALTER TABLE campaigns DROP COLUMN models;
ALTER TABLE campaigns DROP COLUMN blocked_os;
ALTER TABLE campaigns DROP COLUMN devices;
ALTER TABLE campaigns DROP COLUMN min_os_version;
