-- Level-triggered reconcile (issue 25). A campaign's desired row is compared
-- with its stored row, not the network's record with the last one:
--   applied_hash  the hash of the desired row offersync last converged the row
--                 to (the update policy's fingerprint and the campaign's
--                 content hash): equal to this run's, and not drifted, means
--                 nothing to compare;
--   drifted       set by the trigger below when another writer (an operator's
--                 UPDATE) changes a column offersync writes;
--   write_token   bumped by every write of offersync's own, which is how the
--                 trigger tells them from other writers.
ALTER TABLE campaigns
    ADD COLUMN applied_hash TEXT NOT NULL DEFAULT '',
    ADD COLUMN drifted BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN write_token BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION offersync_mark_drift() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.drifted := TRUE;
    RETURN NEW;
END
$$;

-- The WHEN clause keeps offersync's own writes (which bump write_token) from
-- calling the function at all.
CREATE TRIGGER campaigns_mark_drift
    BEFORE UPDATE OF name, advertiser, status, visibility, preview_url, tracking_url, impression_url, thumbnail_url, revenue, payout, revenue_max, payout_max, payout_kind, currency, model, models, objective, redirect, countries, blocked_countries, os, blocked_os, devices, min_os_version, category, description, kpi, payouts, caps, cap_settings, settings, starts_at, expires_at
    ON campaigns
    FOR EACH ROW
    WHEN (OLD.write_token = NEW.write_token)
    EXECUTE FUNCTION offersync_mark_drift();

-- The run log: drift corrected and per-offer warnings.
ALTER TABLE sync_runs
    ADD COLUMN drift_corrected INT NOT NULL DEFAULT 0,
    ADD COLUMN warnings INT NOT NULL DEFAULT 0;
CREATE TABLE sync_warnings (
    run_id      BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX sync_warnings_by_run ON sync_warnings (run_id, external_id);

-- Why the feed's entry happened: upstream changed, setting changed, drift.
ALTER TABLE campaign_changes ADD COLUMN cause TEXT;

-- Why a campaign is marked removed: its offer left the feed (`gone`), the
-- Integration's filters skip it (`filtered`), or its manifest was deleted
-- (`retired`).
ALTER TABLE campaigns ADD COLUMN removed_as TEXT;

-- The update policy (`UpdateColumns::fingerprint`) the integration's last
-- applied run converged rows to: what `plan` names when a setting changed.
ALTER TABLE integrations ADD COLUMN applied_policy TEXT;
