-- Personal data held apart from the ledger (docs/personal-data.md, README
-- "Personal data"). An event whose provider and type the personal-data policy
-- covers is recorded with its personal values cut out: `raw` holds the
-- skeleton, `payload` holds null in their place, and `personal` lists, per
-- value, its path, where it was cut, a salted commitment and its retention.
-- Hash rule 3 covers that list and the skeleton's digest, never a value or a
-- salt. The values and their salts live in personal_values, the one table an
-- erasure or a retention sweep deletes from; events stays append-only.

ALTER TABLE events ADD COLUMN personal jsonb;

ALTER TABLE events DROP CONSTRAINT events_hash_rule_check;
ALTER TABLE events ADD CONSTRAINT events_hash_rule_check CHECK (hash_rule IN (1, 2, 3));

CREATE TABLE personal_values (
    position       bigint NOT NULL,
    n              integer NOT NULL CHECK (n >= 0),
    -- Whose value it is: the event's stream (an order's customer for order-*).
    subject        text NOT NULL,
    -- Where the value sits in the payload (jsonb_set's path).
    path           text[] NOT NULL,
    salt           bytea NOT NULL CHECK (length(salt) = 32),
    -- The value's exact bytes in the raw body (what the commitment covers), and
    -- its JSON value as the payload holds it.
    value          bytea NOT NULL,
    payload_value  jsonb,
    -- A keyed hash of an e-mail address (personal/lookup.py), to find a
    -- subject by address; null for other values.
    lookup         bytea,
    anchor         text NOT NULL CHECK (anchor IN ('recorded', 'countdown_closed')),
    keep_seconds   bigint NOT NULL CHECK (keep_seconds >= 0),
    -- When the retention sweep erases it; null until its countdown closes.
    due_at         timestamptz,
    PRIMARY KEY (position, n)
);

CREATE INDEX personal_values_subject ON personal_values (subject);
CREATE INDEX personal_values_lookup ON personal_values (lookup) WHERE lookup IS NOT NULL;
CREATE INDEX personal_values_due ON personal_values (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX personal_values_waiting ON personal_values (subject)
    WHERE due_at IS NULL;

-- The key of the e-mail lookup hashes: one per installation, made on first use.
CREATE TABLE personal_lookup_key (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    key  bytea NOT NULL CHECK (length(key) = 32)
);

-- How many subjects and values were erased, by request and by retention: the
-- counters of /metrics, kept here because erasures run in any process (the
-- API, the CLI, the background sweep).
CREATE TABLE personal_erasures (
    cause     text PRIMARY KEY CHECK (cause IN ('request', 'retention')),
    subjects  bigint NOT NULL DEFAULT 0,
    "values"  bigint NOT NULL DEFAULT 0
);
INSERT INTO personal_erasures (cause) VALUES ('request'), ('retention');

-- The payload with the personal values that are still held put back: what
-- every reader of whole payloads sees. An erased value stays null.
CREATE FUNCTION personal_payload(payload jsonb, at_position bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    kept record;
BEGIN
    FOR kept IN
        SELECT path, payload_value FROM personal_values
        WHERE position = at_position AND payload_value IS NOT NULL
        ORDER BY n
    LOOP
        payload := jsonb_set(payload, kept.path, kept.payload_value, false);
    END LOOP;
    RETURN payload;
END;
$$;

DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON personal_values TO hookledger_writer;
    GRANT SELECT, INSERT ON personal_lookup_key TO hookledger_writer;
    GRANT SELECT, UPDATE ON personal_erasures TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'personal_values not granted to hookledger_writer: %', SQLERRM;
END
$$;
