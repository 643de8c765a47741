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
