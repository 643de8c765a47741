-- Events a consumer of the ledger could not apply, set aside so that one bad
-- event never stops the others. The event itself stays in the ledger; a row
-- here says which consumer passed over which position, and why (the error's
-- text, bounded, never the body). The consumer's checkpoint moves past the
-- event in the same transaction as the row is written. `hookledger quarantine
-- retry` applies an event again and removes its row once it applies.
CREATE TABLE quarantine (
    consumer       text NOT NULL,
    position       bigint NOT NULL,
    error          text NOT NULL CHECK (length(error) <= 1000),
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    PRIMARY KEY (consumer, position)
);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON quarantine TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'quarantine not granted to hookledger_writer: %', SQLERRM;
END
$$;
