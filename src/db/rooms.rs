//! The `rooms`, `room_members` and `room_bans` tables. Who may do what is decided in
//! `chat::access`, from the `RoomAccess` row read here.

use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row, Statement};
use uuid::Uuid;

use super::messages::MessageRecord;

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: Uuid,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub visibility: String,
    pub last_seq: i64,
    pub archived_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const ROOM_COLUMNS: &str = "r.id, r.name, r.topic, r.visibility, r.last_seq, r.archived_at, r.created_at, r.updated_at";
const ROOM_WIDTH: usize = 8;

impl From<&Row> for RoomRecord {
    fn from(r: &Row) -> Self {
        Self {
            id: r.get(0),
            name: r.get(1),
            topic: r.get(2),
            visibility: r.get(3),
            last_seq: r.get(4),
            archived_at: r.get(5),
            created_at: r.get(6),
            updated_at: r.get(7),
        }
    }
}

/// A room as one user stands towards it.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub room: RoomRecord,
    pub role: Option<String>,
    pub last_read_seq: Option<i64>,
    pub banned: bool,
}

/// The room and `user`'s membership and ban in it.
pub async fn access(
    c: &impl GenericClient,
    room_id: Uuid,
    user: Option<Uuid>,
) -> Result<Option<RoomAccess>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS}, m.role, m.last_read_seq, \
                EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = $2) \
         FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
         WHERE r.id = $1"
    );
    let row = c
        .query_typed_opt(&sql, &[(&room_id, Type::UUID), (&user, Type::UUID)])
        .await?;
    Ok(row.map(|r| RoomAccess {
        room: RoomRecord::from(&r),
        role: r.get(ROOM_WIDTH),
        last_read_seq: r.get(ROOM_WIDTH + 1),
        banned: r.get(ROOM_WIDTH + 2),
    }))
}

/// [`access`] for many `(room, user)` pairs at once (`$1` rooms, `$2` users): prepared once
/// by the message writers, run with [`access_many`].
pub fn access_many_sql() -> String {
    format!(
        "SELECT {ROOM_COLUMNS}, m.role, m.last_read_seq, \
                EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = t.user_id), t.i \
         FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS t(room_id, user_id, i) \
         JOIN rooms r ON r.id = t.room_id \
         LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = t.user_id"
    )
}

/// Runs [`access_many_sql`]: `(index into the pairs, access)` for each pair whose room exists.
pub async fn access_many(
    c: &impl GenericClient,
    statement: &Statement,
    rooms: &[Uuid],
    users: &[Uuid],
) -> Result<Vec<(usize, RoomAccess)>, tokio_postgres::Error> {
    let rows = c.query(statement, &[&rooms, &users]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let i: i64 = r.get(ROOM_WIDTH + 3);
            let access = RoomAccess {
                room: RoomRecord::from(r),
                role: r.get(ROOM_WIDTH),
                last_read_seq: r.get(ROOM_WIDTH + 1),
                banned: r.get(ROOM_WIDTH + 2),
            };
            (i as usize - 1, access)
        })
        .collect())
}

/// [`lock`] for several rooms (`$1`), taken in id order so that two transactions locking
/// several rooms cannot deadlock each other.
pub const LOCK_MANY_SQL: &str = "SELECT 1 FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// Takes the room row's lock until the transaction ends: membership changes and message
/// inserts on one room are serialized by it. `NO KEY UPDATE` leaves foreign-key checks
/// (which take `KEY SHARE`) unblocked.
pub async fn lock(c: &impl GenericClient, room_id: Uuid) -> Result<(), tokio_postgres::Error> {
    c.execute("SELECT 1 FROM rooms WHERE id = $1 FOR NO KEY UPDATE", &[&room_id])
        .await?;
    Ok(())
}

pub async fn id_by_name_key(c: &impl GenericClient, key: &str) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT id FROM rooms WHERE name_key = $1 AND visibility <> 'direct'",
            &[&key],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn id_by_direct_key(c: &impl GenericClient, key: &str) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = c
        .query_opt("SELECT id FROM rooms WHERE direct_key = $1", &[&key])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A new room's fields. `direct_key` is set exactly for direct rooms.
pub struct NewRoom<'a> {
    pub name: Option<(&'a str, &'a str)>,
    pub topic: Option<&'a str>,
    pub visibility: &'a str,
    pub direct_key: Option<&'a str>,
    pub created_by: Option<Uuid>,
}

/// Inserts a room; `None` if its name (or, for a direct room, its pair) is taken.
pub async fn insert(c: &impl GenericClient, room: &NewRoom<'_>) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let (name, key) = match room.name {
        Some((name, key)) => (Some(name), key),
        None => (None, ""),
    };
    let row = c
        .query_opt(
            "INSERT INTO rooms (id, name, name_key, topic, visibility, direct_key, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
            &[
                &Uuid::new_v4(),
                &name,
                &key,
                &room.topic,
                &room.visibility,
                &room.direct_key,
                &room.created_by,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A partial room update: `None` leaves a field alone; `topic: Some(None)` clears it.
#[derive(Debug, Default)]
pub struct RoomChange {
    pub name: Option<(String, String)>,
    pub topic: Option<Option<String>>,
    pub visibility: Option<String>,
}

/// Applies `change`; `Ok(false)` if the new name is taken.
pub async fn update(c: &impl GenericClient, id: Uuid, change: &RoomChange) -> Result<bool, tokio_postgres::Error> {
    let (name, key) = change.name.clone().unzip();
    let result = c
        .execute(
            "UPDATE rooms SET \
               name       = coalesce($2, name), \
               name_key   = coalesce($3, name_key), \
               topic      = CASE WHEN $4 THEN $5 ELSE topic END, \
               visibility = coalesce($6, visibility), \
               updated_at = now() \
             WHERE id = $1",
            &[
                &id,
                &name,
                &key,
                &change.topic.is_some(),
                &change.topic.clone().flatten(),
                &change.visibility,
            ],
        )
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

pub async fn archive(c: &impl GenericClient, id: Uuid) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE rooms SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Deletes a room with its members, bans and messages. Only the operator does this.
pub async fn delete(c: &impl GenericClient, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    Ok(c.execute("DELETE FROM rooms WHERE id = $1", &[&id]).await? == 1)
}

/// A listing entry: the room, the viewer's standing, and what a room list shows.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room: RoomRecord,
    pub name_key: String,
    pub role: Option<String>,
    pub unread_count: Option<i64>,
    pub member_count: i64,
    pub direct_members: Option<Vec<String>>,
    pub last_message: Option<MessageRecord>,
}

/// Which rooms a listing shows.
#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    /// Only rooms `viewer` belongs to (else public rooms too).
    pub mine: bool,
    /// Also archived rooms.
    pub include_archived: bool,
    /// Case-insensitive substring of the name (already lower-cased).
    pub query: Option<String>,
    /// Only this room (a single-room read uses the same query).
    pub room: Option<Uuid>,
}

/// Position in the listing order: named rooms by name, then direct rooms; ties by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomCursor {
    pub direct: bool,
    pub name_key: String,
    pub id: Uuid,
}

/// Rooms visible to `viewer` (`None`: the operator, who sees every room), in listing order.
pub async fn list(
    c: &impl GenericClient,
    viewer: Option<Uuid>,
    filter: &RoomFilter,
    after: Option<&RoomCursor>,
    limit: i64,
) -> Result<Vec<RoomSummary>, tokio_postgres::Error> {
    // The page is chosen first (the inner query walks `rooms_listing_idx` in order and stops
    // at the limit); only its rooms then get their counts and last message. Written as one
    // query, the planner may compute those for every room, then sort.
    let sql = format!(
        "SELECT {ROOM_COLUMNS}, r.name_key, r.role, \
            CASE WHEN r.member THEN {unread} END, \
            (SELECT count(*) FROM room_members x WHERE x.room_id = r.id), \
            CASE WHEN r.visibility = 'direct' THEN \
              (SELECT array_agg(du.username ORDER BY du.username) FROM room_members d \
                 JOIN users du ON du.id = d.user_id WHERE d.room_id = r.id) END, \
            {LAST_MESSAGE_COLUMNS} \
         FROM (SELECT p.*, m.role, m.last_read_seq, m.user_id IS NOT NULL AS member \
               FROM rooms p \
               LEFT JOIN room_members m ON m.room_id = p.id AND m.user_id = $1 \
               WHERE ($1::uuid IS NULL OR m.user_id IS NOT NULL OR (NOT $2 AND p.visibility = 'public' \
                       AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = p.id AND b.user_id = $1))) \
                 AND ($3 OR p.archived_at IS NULL) \
                 AND ($4::text IS NULL OR strpos(p.name_key, $4) > 0) \
                 AND ($5::uuid IS NULL OR p.id = $5) \
                 AND ($6::bool IS NULL OR ((p.visibility = 'direct'), p.name_key COLLATE \"C\", p.id) > ($6, $7::text COLLATE \"C\", $8)) \
               ORDER BY (p.visibility = 'direct'), p.name_key COLLATE \"C\", p.id \
               LIMIT $9) r \
         LEFT JOIN LATERAL (SELECT mm.*, au.username AS author FROM messages mm \
              LEFT JOIN users au ON au.id = mm.author_id \
              WHERE mm.room_id = r.id AND mm.deleted_at IS NULL ORDER BY mm.seq DESC LIMIT 1) lm ON true \
         ORDER BY (r.visibility = 'direct'), r.name_key COLLATE \"C\", r.id",
        unread = super::unread::unread_sql("$1", "r.id", "r.last_read_seq"),
    );
    let (direct, key, id) = match after {
        Some(c) => (Some(c.direct), Some(c.name_key.as_str()), Some(c.id)),
        None => (None, None, None),
    };
    let rows = c
        .query(
            &sql,
            &[
                &viewer,
                &filter.mine,
                &filter.include_archived,
                &filter.query,
                &filter.room,
                &direct,
                &key,
                &id,
                &limit,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RoomSummary {
            room: RoomRecord::from(r),
            name_key: r.get(ROOM_WIDTH),
            role: r.get(ROOM_WIDTH + 1),
            unread_count: r.get(ROOM_WIDTH + 2),
            member_count: r.get(ROOM_WIDTH + 3),
            direct_members: r.get(ROOM_WIDTH + 4),
            last_message: MessageRecord::from_row_at(r, ROOM_WIDTH + 5),
        })
        .collect())
}

/// The lateral `lm` message's columns, in `MessageRecord::from_row_at` order.
const LAST_MESSAGE_COLUMNS: &str =
    "lm.id, lm.room_id, lm.seq, lm.author, lm.body, lm.client_msg_id, lm.created_at, lm.edited_at, lm.deleted_at";

// ----- membership -----

/// Adds a member; `false` if they already were one (their role is left alone).
pub async fn add_member(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    role: &str,
) -> Result<bool, tokio_postgres::Error> {
    // A new member has read nothing before joining: unread counts start at zero.
    let n = c
        .execute(
            "INSERT INTO room_members (room_id, user_id, role, last_read_seq) \
             SELECT $1, $2, $3, r.last_seq FROM rooms r WHERE r.id = $1 ON CONFLICT DO NOTHING",
            &[&room, &user, &role],
        )
        .await?;
    Ok(n == 1)
}

pub async fn remove_member(c: &impl GenericClient, room: Uuid, user: Uuid) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
            &[&room, &user],
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_role(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    role: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE room_members SET role = $3 WHERE room_id = $1 AND user_id = $2",
            &[&room, &user, &role],
        )
        .await?;
    Ok(n == 1)
}

/// The current owner, if the room has one.
pub async fn owner(c: &impl GenericClient, room: Uuid) -> Result<Option<Uuid>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT user_id FROM room_members WHERE room_id = $1 AND role = 'owner'",
            &[&room],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Whether `room` has a member other than `user` (cheap whatever the room's size: it stops
/// at the first one).
pub async fn has_other_members(c: &impl GenericClient, room: Uuid, user: Uuid) -> Result<bool, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id <> $2)",
            &[&room, &user],
        )
        .await?;
    Ok(row.get(0))
}

/// The role of `user` in `room`, if a member.
pub async fn role_of(c: &impl GenericClient, room: Uuid, user: Uuid) -> Result<Option<String>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2",
            &[&room, &user],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub username: String,
    pub display_name: Option<String>,
    pub role: String,
    pub joined_at: OffsetDateTime,
}

/// Members by username, after the cursor `after` (or only the one named `only`).
pub async fn members(
    c: &impl GenericClient,
    room: Uuid,
    after: Option<&str>,
    limit: i64,
    only: Option<&str>,
) -> Result<Vec<MemberRecord>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT u.username, u.display_name, m.role, m.joined_at FROM room_members m \
             JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = $1 AND ($2::text IS NULL OR u.username > $2) \
               AND ($4::text IS NULL OR u.username = $4) \
             ORDER BY u.username LIMIT $3",
            &[&room, &after, &limit, &only],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MemberRecord {
            username: r.get(0),
            display_name: r.get(1),
            role: r.get(2),
            joined_at: r.get(3),
        })
        .collect())
}

// ----- bans -----

/// Bans `user` (or updates the reason of an existing ban); `true` when the ban is new.
pub async fn ban(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    by: Option<Uuid>,
    reason: Option<&str>,
) -> Result<bool, tokio_postgres::Error> {
    let row = c
        .query_one(
            "INSERT INTO room_bans (room_id, user_id, banned_by, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET reason = EXCLUDED.reason, banned_by = EXCLUDED.banned_by \
             RETURNING (xmax = 0)",
            &[&room, &user, &by, &reason],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn ban_exists(c: &impl GenericClient, room: Uuid, user: Uuid) -> Result<bool, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2)",
            &[&room, &user],
        )
        .await?;
    Ok(row.get(0))
}

pub async fn unban(c: &impl GenericClient, room: Uuid, user: Uuid) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2",
            &[&room, &user],
        )
        .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone)]
pub struct BanRecord {
    pub username: String,
    pub banned_by: Option<String>,
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Bans by username, after the cursor `after` (or only the ban of `only`).
pub async fn bans(
    c: &impl GenericClient,
    room: Uuid,
    after: Option<&str>,
    limit: i64,
    only: Option<Uuid>,
) -> Result<Vec<BanRecord>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT u.username, bu.username, b.reason, b.created_at FROM room_bans b \
             JOIN users u ON u.id = b.user_id LEFT JOIN users bu ON bu.id = b.banned_by \
             WHERE b.room_id = $1 AND ($2::text IS NULL OR u.username > $2) \
               AND ($4::uuid IS NULL OR b.user_id = $4) \
             ORDER BY u.username LIMIT $3",
            &[&room, &after, &limit, &only],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| BanRecord {
            username: r.get(0),
            banned_by: r.get(1),
            reason: r.get(2),
            created_at: r.get(3),
        })
        .collect())
}

/// One room by id.
pub async fn by_id(c: &impl GenericClient, id: Uuid) -> Result<Option<RoomRecord>, tokio_postgres::Error> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(RoomRecord::from))
}

/// For each of `users`, everyone who shares with them a room of at most `max_members`
/// members (the audience of their presence), as (user, co-member) pairs. One query for a
/// whole batch of users.
pub async fn co_members(
    c: &impl GenericClient,
    users: &[Uuid],
    max_members: i64,
) -> Result<Vec<(Uuid, Uuid)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT DISTINCT mine.user_id, other.user_id \
             FROM room_members mine \
             JOIN room_members other ON other.room_id = mine.room_id AND other.user_id <> mine.user_id \
             WHERE mine.user_id = ANY($1) \
               AND (SELECT count(*) FROM room_members c WHERE c.room_id = mine.room_id) <= $2",
            &[&users, &max_members],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The members of `room` among `users`, if the room has at most `max_members` members.
pub async fn members_among(
    c: &impl GenericClient,
    room: Uuid,
    users: &[Uuid],
    max_members: i64,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT m.user_id FROM room_members m \
             WHERE m.room_id = $1 AND m.user_id = ANY($2) \
               AND (SELECT count(*) FROM room_members c WHERE c.room_id = $1) <= $3",
            &[&room, &users, &max_members],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Of the (room, user) pairs given, those where the user may no longer read the room: it is
/// gone, they are banned, or it is not public and they are not a member.
pub async fn unreadable(
    c: &impl GenericClient,
    rooms: &[Uuid],
    users: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT p.room_id, p.user_id \
             FROM unnest($1::uuid[], $2::uuid[]) AS p(room_id, user_id) \
             LEFT JOIN rooms r ON r.id = p.room_id \
             WHERE r.id IS NULL \
                OR EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = p.room_id AND b.user_id = p.user_id) \
                OR (r.visibility <> 'public' AND NOT EXISTS \
                    (SELECT 1 FROM room_members m WHERE m.room_id = p.room_id AND m.user_id = p.user_id))",
            &[&rooms, &users],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The rooms among `ids` with their member counts, for the admin API (rooms that were
/// deleted meanwhile are left out).
pub async fn with_member_counts(
    c: &impl GenericClient,
    ids: &[Uuid],
) -> Result<Vec<(RoomRecord, i64)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS}, (SELECT count(*) FROM room_members m WHERE m.room_id = r.id) \
         FROM rooms r WHERE r.id = ANY($1)"
    );
    Ok(c.query(&sql, &[&ids])
        .await?
        .iter()
        .map(|r| (RoomRecord::from(r), r.get(ROOM_WIDTH)))
        .collect())
}

/// The last seq of each of `rooms` that exists.
pub async fn last_seqs(c: &impl GenericClient, rooms: &[Uuid]) -> Result<Vec<(Uuid, i64)>, tokio_postgres::Error> {
    let rows = c
        .query("SELECT id, last_seq FROM rooms WHERE id = ANY($1)", &[&rooms])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
