-- The ledger's Merkle tree (RFC 9162) over the event hashes in position order,
-- kept by the `tree` consumer (events/tree.py), never by the intake. Level 0
-- holds each leaf's hash and which event it is; tree_nodes holds every complete
-- subtree above it: node (level, index) covers leaves [index * 2^level,
-- (index + 1) * 2^level). A proof reads at most a few dozen rows. Nothing here
-- needs trusting: every proof is checked against a signed checkpoint, and
-- `hookledger verify` rebuilds the tree from the events.
CREATE TABLE tree_leaves (
    leaf_index  bigint PRIMARY KEY CHECK (leaf_index >= 0),
    position    bigint NOT NULL UNIQUE,
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE tree_nodes (
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
    index       bigint NOT NULL CHECK (index >= 0),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, index)
);

-- Signed checkpoints: (origin, size, root) as a C2SP signed note. Also
-- published outside the database (a log line, the BigQuery export, files).
CREATE TABLE tree_checkpoints (
    size            bigint PRIMARY KEY CHECK (size >= 0),
    root            bytea NOT NULL CHECK (length(root) = 32),
    origin          text NOT NULL,
    note            text NOT NULL,
    key_fingerprint text NOT NULL CHECK (length(key_fingerprint) = 64),
    signed_at       timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    GRANT SELECT, INSERT ON tree_leaves, tree_nodes, tree_checkpoints TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'tree tables not granted to hookledger_writer: %', SQLERRM;
END
$$;
