-- Bodies of a few KB pass Postgres' TOAST threshold and are compressed as they
-- are appended, and decompressed at every replay and export. lz4 does both
-- several times faster than the default pglz, at a similar ratio on JSON. Only
-- new rows are affected. A server built without lz4 (the embedded one may be)
-- keeps pglz.
DO $$
BEGIN
    ALTER TABLE events
        ALTER COLUMN payload SET COMPRESSION lz4,
        ALTER COLUMN raw SET COMPRESSION lz4,
        ALTER COLUMN metadata SET COMPRESSION lz4;
EXCEPTION
    WHEN feature_not_supported THEN
        RAISE NOTICE 'this server has no lz4: events keep pglz compression';
END
$$;
