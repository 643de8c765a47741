-- Where each consumer of the ledger (a projection, the countdown policy, the
-- exporter) has got to. A consumer advances its row in the same transaction as
-- its effects, after locking it and checking it still holds the position the
-- batch was read from, so each event counts once even if two runners overlap.
CREATE TABLE checkpoints (
    name        text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE ON checkpoints TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'checkpoints not granted to hookledger_writer: %', SQLERRM;
END
$$;
