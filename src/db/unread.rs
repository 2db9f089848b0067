//! What a member has not read: mention counts per room, and the unread state of all of a
//! user's rooms at once (for `hello`). Unread message counts of one room live with the messages
//! (`messages::unread_count`); both kinds of count stop at [`UNREAD_CAP`].

use std::collections::HashMap;

use serde::Serialize;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::messages::UNREAD_CAP;

/// The SQL for `user`'s unread messages in `room` after seq `after` (each an SQL expression):
/// messages by others, not deleted, counted up to [`UNREAD_CAP`].
pub(crate) fn unread_sql(user: &str, room: &str, after: &str) -> String {
    format!(
        "(SELECT count(*) FROM (SELECT 1 FROM messages u WHERE u.room_id = {room} \
           AND u.seq > {after} AND u.deleted_at IS NULL \
           AND u.author_id IS DISTINCT FROM {user} LIMIT {UNREAD_CAP}) unread)"
    )
}

/// The SQL for the mentions of `user` in `room` after seq `after` (each an SQL expression), in
/// messages not deleted, counted up to [`UNREAD_CAP`].
pub(crate) fn mentions_sql(user: &str, room: &str, after: &str) -> String {
    format!(
        "(SELECT count(*) FROM (SELECT 1 FROM message_mentions mm \
           JOIN messages m ON m.room_id = mm.room_id AND m.seq = mm.seq \
           WHERE mm.user_id = {user} AND mm.room_id = {room} AND mm.seq > {after} \
             AND m.deleted_at IS NULL LIMIT {UNREAD_CAP}) mentioned)"
    )
}

/// Mentions of `user` in `room` after `seq` in messages not deleted, up to [`UNREAD_CAP`].
pub async fn mention_count(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    seq: i64,
) -> Result<i64, tokio_postgres::Error> {
    let sql = format!("SELECT {}", mentions_sql("$2", "$1", "$3"));
    let row = c.query_one(&sql, &[&room, &user, &seq]).await?;
    Ok(row.get(0))
}

/// [`mention_count`] after `user`'s read marker, for each of `rooms` `user` is a member of.
pub async fn mention_counts(
    c: &impl GenericClient,
    user: Uuid,
    rooms: &[Uuid],
) -> Result<HashMap<Uuid, i64>, tokio_postgres::Error> {
    if rooms.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT rm.room_id, {} FROM room_members rm WHERE rm.user_id = $1 AND rm.room_id = ANY($2)",
        mentions_sql("$1", "rm.room_id", "rm.last_read_seq")
    );
    let rows = c.query(&sql, &[&user, &rooms]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rooms described by `hello` at most. A member of more rooms gets the rooms with something
/// unread first and `rooms_truncated`; the room list (`GET /rooms?mine=true`) has the rest.
/// Each room costs two capped counts, so this bounds the work done before `hello`.
pub const HELLO_ROOMS: i64 = 200;

/// One of my rooms as `hello` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomUnread {
    pub room_id: Uuid,
    pub last_seq: i64,
    pub last_read_seq: i64,
    pub unread_count: i64,
    pub mention_count: i64,
}

/// The unread state of `user`'s rooms, at most [`HELLO_ROOMS`] of them (rooms where the
/// marker is behind the last seq first), and whether there were more. One query.
pub async fn of_user(c: &impl GenericClient, user: Uuid) -> Result<(Vec<RoomUnread>, bool), tokio_postgres::Error> {
    let sql = format!(
        "SELECT p.room_id, p.last_seq, p.last_read_seq, {}, {} \
         FROM (SELECT rm.room_id, r.last_seq, rm.last_read_seq FROM room_members rm \
               JOIN rooms r ON r.id = rm.room_id WHERE rm.user_id = $1 \
               ORDER BY (r.last_seq > rm.last_read_seq) DESC, rm.room_id LIMIT $2) p \
         ORDER BY (p.last_seq > p.last_read_seq) DESC, p.room_id",
        unread_sql("$1", "p.room_id", "p.last_read_seq"),
        mentions_sql("$1", "p.room_id", "p.last_read_seq")
    );
    let rows = c.query(&sql, &[&user, &(HELLO_ROOMS + 1)]).await?;
    let mut rooms: Vec<RoomUnread> = rows
        .iter()
        .map(|r| RoomUnread {
            room_id: r.get(0),
            last_seq: r.get(1),
            last_read_seq: r.get(2),
            unread_count: r.get(3),
            mention_count: r.get(4),
        })
        .collect();
    let truncated = rooms.len() as i64 > HELLO_ROOMS;
    rooms.truncate(HELLO_ROOMS as usize);
    Ok((rooms, truncated))
}
