-- The operational gauges of /metrics, read at each scrape, each under a
-- "-- name: NAME" header.

-- name: operation_gauges
-- Timers waiting and overdue, and dead letters (actions and Cloud Tasks).
SELECT (SELECT count(*) FROM countdown_timers),
       (SELECT count(*) FROM countdown_timers WHERE due_at <= now()),
       (SELECT count(*) FROM actions WHERE state = 'dead'),
       (SELECT count(*) FROM task_dead_letters)
