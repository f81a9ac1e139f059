-- See the Postgres migration of the same name. AUTOINCREMENT: a position is
-- never reused, even once retention has deleted the newest entries.
CREATE TABLE campaign_changes (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    run_id         INTEGER REFERENCES sync_runs (id) ON DELETE SET NULL,
    campaign_id    INTEGER NOT NULL,
    external_id    TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'restored', 'removed')),
    status         TEXT NOT NULL,
    changed_columns TEXT NOT NULL DEFAULT '[]',
    changed_at     TEXT NOT NULL
);
CREATE INDEX campaign_changes_by_time ON campaign_changes (changed_at);
CREATE INDEX campaign_changes_by_status ON campaign_changes (status, position);
CREATE INDEX campaign_changes_by_integration ON campaign_changes (integration_id, position);
