-- The outbound circuit breakers' states, shared: the breakers live in the
-- process that sends actions (`hookledger worker`, or serve's background
-- process), while /__selftest and /metrics are answered by the intake
-- processes. Each sending process writes a row per provider when its breaker
-- changes state. A row of a process that died open must not hold the circuit
-- open for ever: `expires_at` (the cool-down plus a grace) ends its say.
CREATE TABLE circuit_breakers (
    provider    text NOT NULL,
    holder      text NOT NULL CHECK (length(holder) <= 200),
    state       text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, holder)
);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON circuit_breakers TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'circuit_breakers not granted to hookledger_writer: %', SQLERRM;
END
$$;
