-- See the Postgres migration of the same name.
ALTER TABLE campaigns ADD COLUMN revenue_max TEXT;
ALTER TABLE campaigns ADD COLUMN payout_max TEXT;
ALTER TABLE campaigns ADD COLUMN models TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN blocked_os TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN devices TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN min_os_version TEXT;
