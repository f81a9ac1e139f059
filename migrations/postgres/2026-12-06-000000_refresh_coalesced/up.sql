-- A refresh request answered by a run it did not start: one of another
-- process (a second daemon, `offersync sync`) that began after the request
-- and ended; run_id names that run and outcome is its outcome.
ALTER TABLE refresh_requests ADD COLUMN coalesced BOOLEAN NOT NULL DEFAULT FALSE;
