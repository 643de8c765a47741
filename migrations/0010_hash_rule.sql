-- Which hashing rule made each event's hash (events/chain.py, README "Proof"):
-- rule 1 covered the identifying fields and raw's digest; rule 2 covers the
-- metadata too (and the payload is checked against raw). Events recorded before
-- keep rule 1 and keep verifying under it. The default stays 1 so that a
-- process still running the previous code during a rolling update labels its
-- events truthfully; the appender of this version writes 2.
ALTER TABLE events
    ADD COLUMN hash_rule smallint NOT NULL DEFAULT 1 CHECK (hash_rule IN (1, 2));
