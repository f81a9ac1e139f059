-- What the removal guard compares a run with (see migrations/postgres).
ALTER TABLE sync_runs ADD COLUMN listed INTEGER;
ALTER TABLE sync_runs ADD COLUMN accepted_removals BOOLEAN NOT NULL DEFAULT 0;
-- Live campaigns whose offers the Integration's filters now skip (on_filtered).
ALTER TABLE sync_runs ADD COLUMN filtered INTEGER NOT NULL DEFAULT 0;
-- The raw record's own hash: a change in it alone (an unmapped counter)
-- rewrites only the raw record. Rows from before have none, so their first
-- run after the upgrade refreshes it once.
ALTER TABLE campaigns ADD COLUMN raw_hash TEXT NOT NULL DEFAULT '';
-- The status a pause of offersync's replaced (a removal, or the offer paused
-- upstream): a restore or the offer's return puts it back, and no more.
ALTER TABLE campaigns ADD COLUMN status_before_pause TEXT;
-- Whether revenue and payout are amounts or percentages (revenue-share offers).
ALTER TABLE campaigns ADD COLUMN payout_kind TEXT NOT NULL DEFAULT 'amount';
