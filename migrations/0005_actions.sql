-- The outbound action queue: one row per action (an email, a refund), keyed by
-- its idempotency key, so a decision enqueued twice is performed once. Rows
-- move pending -> done, or pending -> dead after the configured attempts (or at
-- once when retrying cannot help); an operator puts a dead one back to pending.
-- What each attempt did is recorded in the ledger, not here: this table is
-- only the work list.
CREATE TABLE actions (
    key               text PRIMARY KEY,
    kind              text NOT NULL,
    order_id          text NOT NULL,
    trigger_event_id  text NOT NULL,
    params            jsonb NOT NULL DEFAULT '{}'::jsonb,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'done', 'dead')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- How often an operator re-queued it: keeps each round's outcome event ids apart.
    retries           integer NOT NULL DEFAULT 0 CHECK (retries >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Workers claim due pending rows in due order; done rows (nearly all) stay out.
CREATE INDEX actions_due ON actions (next_attempt_at) WHERE state = 'pending';
CREATE INDEX actions_dead ON actions (updated_at) WHERE state = 'dead';

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE ON actions TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'actions not granted to hookledger_writer: %', SQLERRM;
END
$$;
