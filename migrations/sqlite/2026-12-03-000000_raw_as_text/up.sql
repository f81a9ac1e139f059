-- SQLite stores the raw record as text already (see the Postgres migration).
SELECT 1;
