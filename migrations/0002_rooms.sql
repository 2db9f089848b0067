-- Rooms, who is in them and in what role, who is banned from them, and their messages.

-- A room is public (listed, anyone may join), private (members only, invisible to others) or
-- direct (exactly two people, no name, never listed, no joining). Archived rooms keep their
-- history and refuse writes.
CREATE TABLE rooms (
    id           uuid PRIMARY KEY,
    -- NULL exactly for direct rooms.
    name         text,
    -- Unicode lower case of `name`, computed by chatd: names are unique case-insensitively
    -- whatever the database's collation. '' for direct rooms.
    name_key     text NOT NULL DEFAULT '',
    topic        text,
    visibility   text NOT NULL CHECK (visibility IN ('public', 'private', 'direct')),
    -- For direct rooms, the two user ids in order: one direct room per pair.
    direct_key   text UNIQUE,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    -- The seq of the newest message. Incremented in the transaction that stores a message,
    -- under this row's lock, so seqs are gapless and increasing per room.
    last_seq     bigint NOT NULL DEFAULT 0,
    archived_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((visibility = 'direct') = (name IS NULL)),
    CHECK ((visibility = 'direct') = (direct_key IS NOT NULL))
);
CREATE UNIQUE INDEX rooms_name_key ON rooms (name_key) WHERE visibility <> 'direct';
CREATE INDEX rooms_listing_idx ON rooms ((visibility = 'direct'), name_key COLLATE "C", id);

-- Membership. A room has at most one owner (rooms made by an operator may have none).
CREATE TABLE room_members (
    room_id        uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    -- Messages up to this seq have been read; drives unread counts.
    last_read_seq  bigint NOT NULL DEFAULT 0,
    joined_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id);
CREATE UNIQUE INDEX room_members_one_owner ON room_members (room_id) WHERE role = 'owner';

CREATE TABLE room_bans (
    room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
-- "Public rooms I am not banned from" looks bans up by user; deleting a user cascades by it.
CREATE INDEX room_bans_user_idx ON room_bans (user_id);
CREATE INDEX room_bans_banned_by_idx ON room_bans (banned_by) WHERE banned_by IS NOT NULL;
CREATE INDEX rooms_created_by_idx ON rooms (created_by) WHERE created_by IS NOT NULL;

-- Messages. A deleted message is a tombstone: body NULL, seq kept, so history has no holes.
CREATE TABLE messages (
    id             uuid PRIMARY KEY,
    room_id        uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    author_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    body           text,
    -- Chosen by the sending client; a retry with the same id returns the original message.
    client_msg_id  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    edited_at      timestamptz,
    deleted_at     timestamptz,
    deleted_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    UNIQUE (room_id, seq),
    UNIQUE (author_id, client_msg_id),
    CHECK ((deleted_at IS NULL) = (body IS NOT NULL))
);
-- Live messages by room and seq, with the author: unread counts (capped) and each room's last
-- message are index-only scans of it.
CREATE INDEX messages_live_idx ON messages (room_id, seq) INCLUDE (author_id) WHERE deleted_at IS NULL;
-- Deleting a user sets deleted_by to NULL in the messages they moderated.
CREATE INDEX messages_deleted_by_idx ON messages (deleted_by) WHERE deleted_by IS NOT NULL;
