-- The fast path of a re-sync (issue 29): each offer's last outcome, so that
-- a record whose bytes, integration revision and row are unchanged is not
-- parsed, mapped or filtered again.
--   record_hash   SHA-256 of the record's bytes (and its key in an object
--                 container), as split from the page;
--   revision      the integration's revision, the mapping's params and the
--                 offersync version the outcome was computed under;
--   skip_reason   NULL: imported (the campaign row was converged to
--                 applied_hash); else the filter that skipped it, with detail.
-- A row is written in the run's transaction with the campaign write it
-- describes; an outcome that cannot be reused (a warning, a mapping
-- problem) is deleted instead.
CREATE TABLE record_outcomes (
    integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    external_id    TEXT NOT NULL,
    record_hash    TEXT NOT NULL,
    revision       TEXT NOT NULL,
    skip_reason    TEXT,
    detail         TEXT NOT NULL DEFAULT '',
    applied_hash   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (integration_id, external_id)
);
