-- A refresh request answered by a run it did not start (see migrations/postgres).
ALTER TABLE refresh_requests ADD COLUMN coalesced BOOLEAN NOT NULL DEFAULT 0;
