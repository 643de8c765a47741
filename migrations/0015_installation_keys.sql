-- Keys an installation makes once and every process shares: the console's
-- session cookies are signed with one (any instance accepts a cookie another
-- issued). Made on first use by the service, never shown.
CREATE TABLE installation_keys (
    name  text PRIMARY KEY,
    key   bytea NOT NULL CHECK (length(key) >= 32)
);

-- One-time sign-in links to the console (the embedded database's local
-- operator: `serve` prints one). Only the token's SHA-256 is kept.
CREATE TABLE console_links (
    token_sha256  bytea PRIMARY KEY,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

-- Refused signatures by minute, provider and reason, for the console's
-- "trouble" page (a burst of `mismatch` from one provider usually means its
-- secret was rotated on one side only). Each intake process tallies them in
-- memory and adds its counts every few seconds.
CREATE TABLE signature_rejections (
    minute    timestamptz NOT NULL,
    provider  text NOT NULL,
    reason    text NOT NULL,
    count     bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, provider, reason)
);

-- Deliveries by minute, provider and outcome (recorded, idempotent, or the
-- refusal's code), for the console's overview; tallied the same way.
CREATE TABLE delivery_minutes (
    minute    timestamptz NOT NULL,
    provider  text NOT NULL,
    outcome   text NOT NULL,
    count     bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (minute, provider, outcome)
);

-- Work an operator started from the console that runs in the background (a
-- retry of every dead letter matching a filter): what, by whom, how far.
CREATE TABLE console_jobs (
    id           bigserial PRIMARY KEY,
    what         text NOT NULL,
    by           text NOT NULL,
    total        integer NOT NULL CHECK (total >= 0),
    done         integer NOT NULL DEFAULT 0,
    failed       integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE ON signature_rejections, delivery_minutes, console_jobs
        TO hookledger_writer;
    GRANT USAGE ON SEQUENCE console_jobs_id_seq TO hookledger_writer;
    GRANT SELECT, INSERT ON installation_keys TO hookledger_writer;
    GRANT SELECT, INSERT, UPDATE ON console_links TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'installation_keys not granted to hookledger_writer: %', SQLERRM;
END
$$;
