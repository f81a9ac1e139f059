-- See the Postgres migration of the same name.
ALTER TABLE campaigns ADD COLUMN applied_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN drifted BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN write_token BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER campaigns_mark_drift
    AFTER UPDATE OF name, advertiser, status, visibility, preview_url, tracking_url, impression_url, thumbnail_url, revenue, payout, revenue_max, payout_max, payout_kind, currency, model, models, objective, redirect, countries, blocked_countries, os, blocked_os, devices, min_os_version, category, description, kpi, payouts, caps, cap_settings, settings, starts_at, expires_at
    ON campaigns
    FOR EACH ROW
    WHEN OLD.write_token = NEW.write_token
BEGIN
    UPDATE campaigns SET drifted = 1 WHERE id = NEW.id;
END;

ALTER TABLE sync_runs ADD COLUMN drift_corrected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN warnings INTEGER NOT NULL DEFAULT 0;
CREATE TABLE sync_warnings (
    run_id      INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX sync_warnings_by_run ON sync_warnings (run_id, external_id);

ALTER TABLE campaign_changes ADD COLUMN cause TEXT;

-- Why a campaign is marked removed: its offer left the feed (`gone`), the
-- Integration's filters skip it (`filtered`), or its manifest was deleted
-- (`retired`).
ALTER TABLE campaigns ADD COLUMN removed_as TEXT;

-- The update policy (`UpdateColumns::fingerprint`) the integration's last
-- applied run converged rows to: what `plan` names when a setting changed.
ALTER TABLE integrations ADD COLUMN applied_policy TEXT;
