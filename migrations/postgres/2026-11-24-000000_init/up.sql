-- offersync's store: integrations, the campaigns they import, and the run log.

CREATE TABLE integrations (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    network         TEXT NOT NULL,
    -- The manifest document as committed (secrets are references, never values).
    spec            TEXT NOT NULL,
    spec_hash       TEXT NOT NULL,
    source_file     TEXT NOT NULL,
    -- active | disabled | deleted
    state           TEXT NOT NULL DEFAULT 'active',
    last_error      TEXT,
    -- An active campaign was last seen upstream at its integration's last successful run.
    last_success_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    id                BIGSERIAL PRIMARY KEY,
    integration_id    BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    external_id       TEXT NOT NULL,
    name              TEXT NOT NULL,
    advertiser        TEXT NOT NULL,
    -- active | paused | pending
    status            TEXT NOT NULL,
    -- private | permission | public
    visibility        TEXT NOT NULL,
    preview_url       TEXT,
    tracking_url      TEXT,
    impression_url    TEXT,
    thumbnail_url     TEXT,
    -- What the advertiser pays (the network's payout), and what publishers get.
    revenue           NUMERIC,
    payout            NUMERIC,
    currency          TEXT,
    model             TEXT,
    objective         TEXT,
    redirect          INTEGER NOT NULL,
    countries         JSONB NOT NULL,
    blocked_countries JSONB NOT NULL,
    os                JSONB NOT NULL,
    category          TEXT,
    description       TEXT,
    kpi               TEXT,
    -- Payouts that differ by country, goal or OS.
    payouts           JSONB NOT NULL,
    -- The network's caps and the integration's additional caps (kept updated when caps.update).
    caps              JSONB NOT NULL,
    -- Caps added when the campaign was created (never updated).
    import_caps       JSONB NOT NULL,
    cap_settings      JSONB NOT NULL,
    -- Time targeting, multi-conversion, impressions, spillover.
    settings          JSONB NOT NULL,
    starts_at         TIMESTAMPTZ,
    expires_at        TIMESTAMPTZ,
    raw               JSONB NOT NULL,
    -- SHA-256 of everything offersync computed for this campaign: equal means no write.
    content_hash      TEXT NOT NULL,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    changed_at        TIMESTAMPTZ NOT NULL,
    -- Set when the offer disappeared upstream; cleared when it comes back.
    removed_at        TIMESTAMPTZ,
    UNIQUE (integration_id, external_id)
);

-- Payouts for publisher tiers (revenue × the tier's ratio) and named publishers (fixed).
CREATE TABLE publisher_payouts (
    integration_id BIGINT NOT NULL,
    external_id    TEXT NOT NULL,
    -- tier | publisher
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    payout         NUMERIC NOT NULL,
    PRIMARY KEY (integration_id, external_id, kind, name),
    FOREIGN KEY (integration_id, external_id)
        REFERENCES campaigns (integration_id, external_id) ON DELETE CASCADE
);

CREATE TABLE sync_runs (
    id             BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    -- cli | schedule | refresh | manifest
    trigger        TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    -- running | succeeded | failed
    status         TEXT NOT NULL,
    pages          INTEGER NOT NULL DEFAULT 0,
    fetched        INTEGER NOT NULL DEFAULT 0,
    created        INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    unchanged      INTEGER NOT NULL DEFAULT 0,
    skipped        INTEGER NOT NULL DEFAULT 0,
    removed        INTEGER NOT NULL DEFAULT 0,
    restored       INTEGER NOT NULL DEFAULT 0,
    error          TEXT
);
CREATE INDEX sync_runs_by_integration ON sync_runs (integration_id, id DESC);

CREATE TABLE sync_skips (
    run_id      BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    external_id TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX sync_skips_by_run ON sync_skips (run_id);

CREATE TABLE refresh_requests (
    id             BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    requested_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    requested_by   TEXT NOT NULL DEFAULT '',
    claimed_at     TIMESTAMPTZ,
    claimed_by     TEXT,
    run_id         BIGINT REFERENCES sync_runs (id) ON DELETE SET NULL
);
CREATE INDEX refresh_requests_unclaimed ON refresh_requests (integration_id) WHERE claimed_at IS NULL;
