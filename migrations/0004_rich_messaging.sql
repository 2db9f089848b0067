-- Rich messaging: replies, reactions, mentions, full-text search, invite links, the audit log.

-- A reply names an earlier message of the same room by its seq (checked by chatd under the
-- room's lock; a parent deleted later is shown as a tombstone, so no foreign key is needed).
ALTER TABLE messages ADD COLUMN reply_to bigint CHECK (reply_to > 0 AND reply_to < seq);

-- Full-text search: kept current by PostgreSQL itself on insert, edit and delete (a tombstone's
-- body is NULL, so its vector is empty). The 'simple' configuration lower-cases and splits on
-- non-word characters without stemming or stop words: chat is written in every language.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(body, ''))) STORED;
CREATE INDEX messages_search_idx ON messages USING gin (search) WHERE deleted_at IS NULL;

-- One reaction per user per emoji per message.
CREATE TABLE message_reactions (
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji       text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 64),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);
CREATE INDEX message_reactions_user_idx ON message_reactions (user_id);

-- Members a message mentions (`@username`, resolved when it was sent). Counting a member's
-- mentions after their read marker drives `mention_count`.
CREATE TABLE message_mentions (
    room_id  uuid NOT NULL,
    seq      bigint NOT NULL,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id, seq),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
CREATE INDEX message_mentions_message_idx ON message_mentions (room_id, seq);

-- Invite links to a room. A code is usable while not revoked, not expired and under its use
-- limit (NULL: no expiry / no limit).
CREATE TABLE room_invites (
    code        text PRIMARY KEY,
    room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    max_uses    integer CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at  timestamptz,
    revoked_by  uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX room_invites_room_idx ON room_invites (room_id, created_at);
CREATE INDEX room_invites_created_by_idx ON room_invites (created_by) WHERE created_by IS NOT NULL;
CREATE INDEX room_invites_revoked_by_idx ON room_invites (revoked_by) WHERE revoked_by IS NOT NULL;

-- Every moderation and admin action. Names are copied at the time of the action and ids are
-- not foreign keys: the record outlives the users and rooms it names.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    action       text NOT NULL,
    -- NULL for the operator (`chatd` at the command line or an operator token).
    actor_id     uuid,
    actor_name   text NOT NULL,
    room_id      uuid,
    room_name    text,
    target_id    uuid,
    target_name  text,
    reason       text,
    details      jsonb
);
CREATE INDEX audit_log_room_idx ON audit_log (room_id, id) WHERE room_id IS NOT NULL;
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_target_idx ON audit_log (target_id, id) WHERE target_id IS NOT NULL;
CREATE INDEX audit_log_at_idx ON audit_log (at);
