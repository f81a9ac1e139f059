ALTER TABLE integrations DROP COLUMN attempted_spec_hash;
ALTER TABLE refresh_requests DROP COLUMN outcome;
ALTER TABLE refresh_requests DROP COLUMN finished_at;
DROP TABLE spec_claims;
DROP TABLE schedule_claims;
