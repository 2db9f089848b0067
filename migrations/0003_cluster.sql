-- The nodes of a cluster (several `chatd serve` sharing this database) and who is connected
-- to which. Both are live state, rebuilt by the nodes themselves: unlogged (no WAL; emptied by
-- a database crash, after which every node registers again at its next heartbeat).

-- One row per running node. `heartbeat_at` is written every `cluster.heartbeat_secs` with
-- the node's figures; a node silent for longer than its own `timeout_secs`
-- (`cluster.node_timeout_secs`) is dead and is deleted by any other node, with its presence
-- rows. Times are the database's clock, never a node's.
CREATE UNLOGGED TABLE nodes (
    id            uuid PRIMARY KEY,
    hostname      text NOT NULL,
    address       text NOT NULL,
    -- Where the other nodes reach its API (`cluster.advertise_url`).
    url           text NOT NULL,
    version       text NOT NULL,
    -- Names the node's token signing secret (a hash, not the secret): nodes that differ refuse
    -- each other's tokens, which the nodes report.
    key_id        text NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    timeout_secs  integer NOT NULL CHECK (timeout_secs > 0),
    -- The node's admin figures at its last heartbeat (the admin API's `nodes`).
    stats         jsonb
);

-- A user is online while they have a row here: one per node holding at least one of their
-- connections.
CREATE UNLOGGED TABLE node_presence (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    node_id  uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, node_id)
);
CREATE INDEX node_presence_node_idx ON node_presence (node_id);
