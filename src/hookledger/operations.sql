-- The operational gauges of /metrics, read at each scrape, each under a
-- "-- name: NAME" header.

-- name: operation_gauges
-- Timers waiting and overdue, and dead letters (actions and Cloud Tasks).
SELECT (SELECT count(*) FROM countdown_timers),
       (SELECT count(*) FROM countdown_timers WHERE due_at <= now()),
       (SELECT count(*) FROM actions WHERE state = 'dead'),
       (SELECT count(*) FROM task_dead_letters)

-- name: checkpoint_gauges
-- The newest checkpoint's age in seconds, and the tree's leaves it does not
-- sign yet; no row before the first checkpoint.
SELECT extract(epoch FROM now() - signed_at)::float8,
       (SELECT coalesce(max(leaf_index) + 1, 0) FROM tree_leaves) - size
FROM tree_checkpoints ORDER BY size DESC LIMIT 1

-- name: tasks_due
-- Cloud Tasks due already whose timers still wait: the queue's backlog of calls
-- (read from the timers' index, however many countdowns are pending).
SELECT count(*)
FROM countdown_timers AS c
JOIN timer_tasks AS t USING (order_id, timer, due_at)
WHERE c.due_at <= now()

-- name: last_verify
-- The newest `hookledger verify` of the whole ledger; no row before the first.
SELECT ok, extract(epoch FROM finished_at)::float8 FROM verify_runs ORDER BY id DESC LIMIT 1

-- name: record_verify
INSERT INTO verify_runs (ok, events, detail) VALUES (%s, %s, left(%s, 1000))
