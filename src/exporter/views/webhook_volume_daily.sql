-- Recorded events per day (UTC) and provider, by type family and outcome: the
-- type before and after its first dot (verification / approved). The ledger
-- holds accepted deliveries only; rejected requests (bad signature, malformed)
-- are counted in /metrics as hookledger_webhooks_total{provider,outcome}.
-- Provider hookledger is the service's own decisions (countdown.*) and the
-- outcomes of its outbound actions (action.*).
SELECT
  CAST(recorded_at AS DATE) AS event_date,
  provider,
  CASE WHEN STRPOS(type, '.') > 0 THEN SUBSTR(type, 1, STRPOS(type, '.') - 1) ELSE type END
    AS type_family,
  CASE WHEN STRPOS(type, '.') > 0 THEN SUBSTR(type, STRPOS(type, '.') + 1) ELSE '' END
    AS outcome,
  COUNT(*) AS events
FROM {events}
GROUP BY event_date, provider, type_family, outcome
