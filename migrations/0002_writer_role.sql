-- A least-privilege role for the service: it may read and append events, never
-- change them. Operators grant it to the service's login user
-- (GRANT hookledger_writer TO <user>). Roles are cluster-wide; where the migrating
-- user may not create roles, the grants are skipped with a notice.
DO $$
BEGIN
    BEGIN
        CREATE ROLE hookledger_writer NOLOGIN;
    EXCEPTION
        -- Made already, by this or another database's migration (maybe concurrently).
        WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    GRANT SELECT, INSERT ON events TO hookledger_writer;
    GRANT SELECT, INSERT, UPDATE ON streams TO hookledger_writer;
    GRANT SELECT ON schema_migrations TO hookledger_writer;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'hookledger_writer role not set up: %', SQLERRM;
END
$$;
