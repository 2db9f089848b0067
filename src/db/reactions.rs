//! The `message_reactions` table: one row per message, emoji and user.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub message_id: Uuid,
    pub emoji: String,
    pub count: i64,
    /// Whether the reader is one of them.
    pub mine: bool,
    pub first_at: OffsetDateTime,
}

/// The reactions to the messages `ids` (distinct) that are not deleted, per message and
/// emoji, each message's emojis in the order they were first used; `mine` for `readers[i]`'s
/// on `ids[i]`.
pub async fn tallies(
    c: &impl GenericClient,
    ids: &[Uuid],
    readers: &[Option<Uuid>],
) -> Result<Vec<Tally>, tokio_postgres::Error> {
    let sql = "SELECT r.message_id, r.emoji, count(*), coalesce(bool_or(r.user_id = t.reader), false), \
                      min(r.created_at) AS first \
               FROM unnest($1::uuid[], $2::uuid[]) AS t(id, reader) \
               JOIN message_reactions r ON r.message_id = t.id \
               JOIN messages m ON m.id = r.message_id AND m.deleted_at IS NULL \
               GROUP BY r.message_id, r.emoji ORDER BY r.message_id, first, r.emoji";
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&ids, Type::UUID_ARRAY), (&readers, Type::UUID_ARRAY)];
    let rows = c.query_typed(sql, &params).await?;
    Ok(rows
        .iter()
        .map(|r| Tally {
            message_id: r.get(0),
            emoji: r.get(1),
            count: r.get(2),
            mine: r.get(3),
            first_at: r.get(4),
        })
        .collect())
}

/// The message at `(room, seq)` locked for a change of its reactions (its id and when it was
/// deleted): reactions to one message are changed one at a time, so counts and the cap on
/// emojis are exact, and a delete waits for them (or they for it).
pub async fn lock_message(
    c: &impl GenericClient,
    room: Uuid,
    seq: i64,
) -> Result<Option<(Uuid, Option<OffsetDateTime>)>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT id, deleted_at FROM messages WHERE room_id = $1 AND seq = $2 FOR UPDATE",
            &[&room, &seq],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Adds `user`'s reaction; `false` if it was there already.
pub async fn add(
    c: &impl GenericClient,
    message: Uuid,
    emoji: &str,
    user: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&message, &emoji, &user],
        )
        .await?;
    Ok(n == 1)
}

/// Removes `user`'s reaction; `false` if there was none.
pub async fn remove(
    c: &impl GenericClient,
    message: Uuid,
    emoji: &str,
    user: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
            &[&message, &emoji, &user],
        )
        .await?;
    Ok(n == 1)
}

/// The distinct emojis on a message, and how many reacted with `emoji`.
pub async fn counts(c: &impl GenericClient, message: Uuid, emoji: &str) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT count(DISTINCT emoji), count(*) FILTER (WHERE emoji = $2) FROM message_reactions WHERE message_id = $1",
            &[&message, &emoji],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}
