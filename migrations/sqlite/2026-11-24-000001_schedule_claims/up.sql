-- One row per scheduled tick that the daemon ran (see migrations/postgres).
CREATE TABLE schedule_claims (
    integration TEXT NOT NULL,
    tick        TEXT NOT NULL,
    claimed_by  TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    -- Set when the tick's run ended; a claim left open by a daemon that died
    -- is taken over by another after a while.
    finished_at TEXT,
    PRIMARY KEY (integration, tick)
);

-- The spec version of each integration that a daemon has taken up: a daemon
-- runs a new or changed spec at once only if it moves this row, so that of
-- several daemons one runs it, and a reverted spec runs again.
CREATE TABLE spec_claims (
    integration TEXT PRIMARY KEY,
    spec_hash   TEXT NOT NULL
);

-- When a daemon finished handling a refresh request, and how.
ALTER TABLE refresh_requests ADD COLUMN finished_at TEXT;
ALTER TABLE refresh_requests ADD COLUMN outcome TEXT;
-- The version of the manifest last seen in the directory when it did not
-- validate (the integration keeps running on spec_hash, its last good one).
ALTER TABLE integrations ADD COLUMN attempted_spec_hash TEXT;
