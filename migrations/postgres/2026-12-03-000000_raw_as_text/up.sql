-- The raw record is kept as the network sent it, as text (issue 15): as
-- JSONB, every row's record was parsed into JSONB and, being over the TOAST
-- threshold (about 2 KB), compressed with pglz, which together took most of
-- a first sync's write. Text with lz4 writes the same 100k records of 2 KB in
-- 1.1 s instead of 3.5 s. Read it as JSON with `raw::jsonb`.
-- The type change rewrites the table once (an ACCESS EXCLUSIVE lock while it runs).
ALTER TABLE campaigns ALTER COLUMN raw TYPE TEXT USING raw::text;
-- lz4 needs PostgreSQL 14 built with it (Debian's and the managed services'
-- are); any other server keeps its default compression.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE campaigns ALTER COLUMN raw SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'campaigns.raw keeps the default compression: %', SQLERRM;
END
$$;
