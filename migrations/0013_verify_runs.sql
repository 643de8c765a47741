-- The outcome of each `hookledger verify` of the whole ledger, so that the
-- service can expose the last one (/metrics: hookledger_verify_ok) and an
-- alert can fire when the ledger failed its check or was not checked lately.
-- A row says what was checked and whether it held, never the ledger's content.
CREATE TABLE verify_runs (
    id           bigserial PRIMARY KEY,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL,
    events       bigint NOT NULL CHECK (events >= 0),
    detail       text NOT NULL CHECK (length(detail) <= 1000)
);

DO $$
BEGIN
    GRANT SELECT, INSERT ON verify_runs TO hookledger_writer;
    GRANT USAGE ON SEQUENCE verify_runs_id_seq TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'verify_runs not granted to hookledger_writer: %', SQLERRM;
END
$$;
