-- Orders per order date (UTC), and how far they got: window started, identity
-- check begun, approved, and how the window ended (verified in time, expired,
-- cancelled, still open).
SELECT
  CAST(ordered_at AS DATE) AS order_date,
  COUNT(*) AS orders,
  COUNT(window_started_at) AS windows_started,
  COUNT(verification_begun_at) AS verifications_begun,
  COUNT(approved_at) AS approved,
  SUM(CASE WHEN outcome = 'verified' THEN 1 ELSE 0 END) AS verified_within_window,
  SUM(CASE WHEN outcome = 'expired' THEN 1 ELSE 0 END) AS expired,
  SUM(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
  SUM(CASE WHEN outcome = 'open' THEN 1 ELSE 0 END) AS still_open,
  ROUND(SUM(CASE WHEN outcome = 'verified' THEN 1 ELSE 0 END) / COUNT(*), 4) AS verified_share
FROM {order_verification_times}
GROUP BY order_date
