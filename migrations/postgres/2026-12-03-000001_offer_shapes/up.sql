-- Offer shapes a campaign could not hold (issue 16): the top of a commission
-- range, every model of a hybrid offer, refused operating systems, device
-- types and the lowest OS version. Defaults need no table rewrite.
ALTER TABLE campaigns
    ADD COLUMN revenue_max NUMERIC,
    ADD COLUMN payout_max NUMERIC,
    ADD COLUMN models JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN blocked_os JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN devices JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN min_os_version TEXT;
