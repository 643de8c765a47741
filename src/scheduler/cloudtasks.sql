-- The Cloud Tasks timer backend's SQL, each query under a "-- name: NAME" header.

-- name: sync_lock
-- One instance syncs at a time (held until its transaction ends); the others
-- skip the round rather than create the same tasks again.
SELECT pg_try_advisory_xact_lock(hashtext('hookledger.cloudtasks.sync'))

-- name: timers_without_task
SELECT t.order_id, t.timer, t.due_at
FROM countdown_timers AS t
LEFT JOIN timer_tasks AS k USING (order_id, timer, due_at)
WHERE k.order_id IS NULL
ORDER BY t.due_at
LIMIT %s

-- name: tasks_without_timer
SELECT k.order_id, k.timer, k.due_at, k.task_name
FROM timer_tasks AS k
LEFT JOIN countdown_timers AS t USING (order_id, timer, due_at)
WHERE t.order_id IS NULL
LIMIT %s

-- name: remember_tasks
INSERT INTO timer_tasks (order_id, timer, due_at, task_name)
SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::text[])
ON CONFLICT DO NOTHING

-- name: forget_tasks
DELETE FROM timer_tasks WHERE task_name = ANY(%b::text[])

-- name: record_dead_task
INSERT INTO task_dead_letters (task_name, order_id, retry_count, last_error)
VALUES (%s, %s, %s, %s)
ON CONFLICT (task_name) DO UPDATE
SET retry_count = excluded.retry_count, last_error = excluded.last_error, updated_at = now()

-- name: dead_tasks
SELECT task_name, order_id, retry_count, last_error, updated_at
FROM task_dead_letters
ORDER BY updated_at, task_name
