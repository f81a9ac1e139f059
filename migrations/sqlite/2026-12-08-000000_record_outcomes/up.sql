-- The fast path of a re-sync (issue 29): each offer's last outcome (see
-- migrations/postgres for the columns).
CREATE TABLE record_outcomes (
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    external_id    TEXT NOT NULL,
    record_hash    TEXT NOT NULL,
    revision       TEXT NOT NULL,
    skip_reason    TEXT,
    detail         TEXT NOT NULL DEFAULT '',
    applied_hash   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (integration_id, external_id)
);
