-- One row per scheduled tick that the daemon ran (see migrations/postgres).
CREATE TABLE schedule_claims (
    integration TEXT NOT NULL,
    tick        TEXT NOT NULL,
    claimed_by  TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    PRIMARY KEY (integration, tick)
);

-- When a daemon finished handling a refresh request, and how.
ALTER TABLE refresh_requests ADD COLUMN finished_at TEXT;
ALTER TABLE refresh_requests ADD COLUMN outcome TEXT;
-- The version of the manifest last seen in the directory when it did not
-- validate (the integration keeps running on spec_hash, its last good one).
ALTER TABLE integrations ADD COLUMN attempted_spec_hash TEXT;
