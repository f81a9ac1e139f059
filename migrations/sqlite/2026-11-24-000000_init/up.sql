-- offersync's embedded store: the same tables as migrations/postgres, in
-- SQLite's types. Decimals are TEXT (their exact digits; never REAL), JSON is
-- TEXT, times are ISO 8601 TEXT in UTC.

CREATE TABLE integrations (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    network         TEXT NOT NULL,
    spec            TEXT NOT NULL,
    spec_hash       TEXT NOT NULL,
    source_file     TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'active',
    last_error      TEXT,
    last_success_at TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE campaigns (
    id                INTEGER PRIMARY KEY,
    integration_id    INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    external_id       TEXT NOT NULL,
    name              TEXT NOT NULL,
    advertiser        TEXT NOT NULL,
    status            TEXT NOT NULL,
    visibility        TEXT NOT NULL,
    preview_url       TEXT,
    tracking_url      TEXT,
    impression_url    TEXT,
    thumbnail_url     TEXT,
    revenue           TEXT,
    payout            TEXT,
    currency          TEXT,
    model             TEXT,
    objective         TEXT,
    redirect          INTEGER NOT NULL,
    countries         TEXT NOT NULL,
    blocked_countries TEXT NOT NULL,
    os                TEXT NOT NULL,
    category          TEXT,
    description       TEXT,
    kpi               TEXT,
    payouts           TEXT NOT NULL,
    caps              TEXT NOT NULL,
    import_caps       TEXT NOT NULL,
    cap_settings      TEXT NOT NULL,
    settings          TEXT NOT NULL,
    starts_at         TEXT,
    expires_at        TEXT,
    raw               TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    first_seen_at     TEXT NOT NULL,
    changed_at        TEXT NOT NULL,
    removed_at        TEXT,
    UNIQUE (integration_id, external_id)
);

CREATE TABLE publisher_payouts (
    integration_id INTEGER NOT NULL,
    external_id    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    payout         TEXT NOT NULL,
    PRIMARY KEY (integration_id, external_id, kind, name),
    FOREIGN KEY (integration_id, external_id)
        REFERENCES campaigns (integration_id, external_id) ON DELETE CASCADE
);

CREATE TABLE sync_runs (
    id             INTEGER PRIMARY KEY,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    trigger        TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
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
    run_id      INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    external_id TEXT,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX sync_skips_by_run ON sync_skips (run_id);

CREATE TABLE refresh_requests (
    id             INTEGER PRIMARY KEY,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    requested_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    requested_by   TEXT NOT NULL DEFAULT '',
    claimed_at     TEXT,
    claimed_by     TEXT,
    run_id         INTEGER REFERENCES sync_runs (id) ON DELETE SET NULL
);
CREATE INDEX refresh_requests_unclaimed ON refresh_requests (integration_id) WHERE claimed_at IS NULL;
