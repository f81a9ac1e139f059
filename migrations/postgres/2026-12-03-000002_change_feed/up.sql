-- The change feed (issue 18): what each applied run did to campaigns, for
-- the platform to read from a position on. Append-only; positions are taken
-- under a transaction lock (see store::feed), so they become visible in order.
CREATE TABLE campaign_changes (
    position       BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    run_id         BIGINT REFERENCES sync_runs (id) ON DELETE SET NULL,
    campaign_id    BIGINT NOT NULL,
    external_id    TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'restored', 'removed')),
    status         TEXT NOT NULL,
    changed_columns JSONB NOT NULL DEFAULT '[]',
    changed_at     TIMESTAMPTZ NOT NULL
);
-- What the platform asks: changes since a time, of one status, of one
-- integration, each in feed order (by position: the primary key).
CREATE INDEX campaign_changes_by_time ON campaign_changes (changed_at);
CREATE INDEX campaign_changes_by_status ON campaign_changes (status, position);
CREATE INDEX campaign_changes_by_integration ON campaign_changes (integration_id, position);
