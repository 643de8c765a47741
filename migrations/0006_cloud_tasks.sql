-- The Cloud Tasks timer backend's bookkeeping. Neither table is a source of
-- truth for a countdown: the ledger and countdown_timers decide; these only
-- remember which Cloud Task stands for which timer row, and which tasks gave up.

-- One row per task created for a pending timer (order, timer, due time); a
-- timer row that moves or goes away leaves a row here without a timer, and its
-- task is deleted where Cloud Tasks allows.
CREATE TABLE timer_tasks (
    order_id    text NOT NULL,
    timer       text NOT NULL,
    due_at      timestamptz NOT NULL,
    task_name   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, timer, due_at)
);

-- Tasks answered 2xx after failing up to the retry limit: the reconciler still
-- fires their timers; this list is for the operator (`hookledger dead-letters`).
CREATE TABLE task_dead_letters (
    task_name    text PRIMARY KEY,
    order_id     text,
    retry_count  integer NOT NULL,
    last_error   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON timer_tasks, task_dead_letters TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'cloud tasks tables not granted to hookledger_writer: %', SQLERRM;
END
$$;
