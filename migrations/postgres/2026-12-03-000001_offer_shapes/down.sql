ALTER TABLE campaigns
    DROP COLUMN revenue_max,
    DROP COLUMN payout_max,
    DROP COLUMN models,
    DROP COLUMN blocked_os,
    DROP COLUMN devices,
    DROP COLUMN min_os_version;
