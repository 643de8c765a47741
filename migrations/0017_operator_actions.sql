-- The console's page of what operators did (retries, replays, erasures),
-- newest first, for the auditor: a few events among millions, so an index of
-- their own rather than a walk back through the ledger.
CREATE INDEX events_operator_actions ON events (position)
    WHERE type IN ('operator.retried', 'operator.replayed', 'subject.erased');
