ALTER TABLE refresh_requests DROP COLUMN coalesced;
