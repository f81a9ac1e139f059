DROP TABLE refresh_requests;
DROP TABLE sync_skips;
DROP TABLE sync_runs;
DROP TABLE publisher_payouts;
DROP TABLE campaigns;
DROP TABLE integrations;
