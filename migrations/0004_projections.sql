-- Projections: state folded from the ledger, rebuilt by `hookledger replay`.
-- Nothing here is a source of truth; every row can be recomputed from events.

CREATE TABLE orders (
    order_id     text PRIMARY KEY,
    created_at   timestamptz,
    total        numeric,
    currency     text,
    customer     text,
    status       text NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE verifications (
    order_id         text PRIMARY KEY,
    sessions         text[] NOT NULL,
    latest_decision  text,
    decided_at       timestamptz,
    submitted_at     timestamptz,
    attempts         integer NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE countdowns (
    order_id      text PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    reminders     timestamptz[] NOT NULL,
    reminded      timestamptz[] NOT NULL,
    state         text NOT NULL CHECK (state IN ('running', 'satisfied', 'expired', 'cancelled')),
    closed_at     timestamptz,
    updated_at    timestamptz NOT NULL
);

-- The countdowns' pending timers, claimed by the Postgres timer backend with
-- FOR UPDATE SKIP LOCKED. Part of the countdowns projection.
CREATE TABLE countdown_timers (
    order_id  text NOT NULL,
    timer     text NOT NULL,
    due_at    timestamptz NOT NULL,
    PRIMARY KEY (order_id, timer)
);
CREATE INDEX countdown_timers_due ON countdown_timers (due_at);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON orders, verifications, countdowns, countdown_timers
        TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'projections not granted to hookledger_writer: %', SQLERRM;
END
$$;
