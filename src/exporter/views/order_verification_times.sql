-- One row per order: when it was placed, when its verification window started,
-- when its identity check began and was first approved, how the window ended
-- (verified, expired, cancelled, or still open), and the seconds from the order
-- to the approval (NULL while there is none).
WITH orders AS (
  SELECT order_id, MIN(COALESCE(occurred_at, recorded_at)) AS ordered_at
  FROM {events}
  WHERE type = 'order.created' AND order_id IS NOT NULL
  GROUP BY order_id
),
facts AS (
  SELECT
    order_id,
    MIN(CASE WHEN type = 'countdown.started' THEN recorded_at END) AS window_started_at,
    MIN(CASE WHEN provider = 'veriff' THEN COALESCE(occurred_at, recorded_at) END)
      AS verification_begun_at,
    MIN(CASE WHEN type = 'verification.approved' THEN COALESCE(occurred_at, recorded_at) END)
      AS approved_at,
    MAX(CASE
      WHEN type = 'countdown.satisfied' THEN 'verified'
      WHEN type = 'countdown.expired' THEN 'expired'
      WHEN type = 'countdown.cancelled' THEN 'cancelled'
    END) AS outcome,
    MIN(CASE
      WHEN type IN ('countdown.satisfied', 'countdown.expired', 'countdown.cancelled')
      THEN recorded_at
    END) AS window_closed_at
  FROM {events}
  WHERE order_id IS NOT NULL
  GROUP BY order_id
)
SELECT
  o.order_id,
  o.ordered_at,
  f.window_started_at,
  f.verification_begun_at,
  f.approved_at,
  (UNIX_MICROS(f.approved_at) - UNIX_MICROS(o.ordered_at)) / 1000000 AS seconds_to_approval,
  COALESCE(f.outcome, 'open') AS outcome,
  f.window_closed_at
FROM orders AS o
LEFT JOIN facts AS f ON f.order_id = o.order_id
