-- What the removal guard compares a run with (see migrations/postgres).
ALTER TABLE sync_runs ADD COLUMN listed INTEGER;
ALTER TABLE sync_runs ADD COLUMN accepted_removals BOOLEAN NOT NULL DEFAULT 0;
-- Live campaigns whose offers the Integration's filters now skip (on_filtered).
ALTER TABLE sync_runs ADD COLUMN filtered INTEGER NOT NULL DEFAULT 0;
