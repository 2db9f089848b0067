//! The `messages` table. A message's `seq` is taken from its room's `last_seq` in the
//! transaction that stores it, so seqs are gapless under any number of concurrent senders: the
//! room row's lock orders them, and a rollback returns the seqs. New messages are stored in
//! batches (`insert_many`, see `chat::ingest`); `next_seq` + `insert` store one on its own.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Statement};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    /// The author's username; `None` once their account is deleted.
    pub author: Option<String>,
    /// `None` for a deleted message (a tombstone).
    pub body: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub edited_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl MessageRecord {
    /// Reads the nine message columns starting at `at`; `None` when they are NULL (no row).
    pub fn from_row_at(r: &Row, at: usize) -> Option<Self> {
        let id: Option<Uuid> = r.get(at);
        Some(Self {
            id: id?,
            room_id: r.get(at + 1),
            seq: r.get(at + 2),
            author: r.get(at + 3),
            body: r.get(at + 4),
            client_msg_id: r.get(at + 5),
            created_at: r.get(at + 6),
            edited_at: r.get(at + 7),
            deleted_at: r.get(at + 8),
        })
    }
}

const COLUMNS: &str =
    "m.id, m.room_id, m.seq, au.username, m.body, m.client_msg_id, m.created_at, m.edited_at, m.deleted_at";
const FROM: &str = "FROM messages m LEFT JOIN users au ON au.id = m.author_id";

fn records(rows: &[Row]) -> Vec<MessageRecord> {
    rows.iter().filter_map(|r| MessageRecord::from_row_at(r, 0)).collect()
}

/// Takes the room's next seq. Holds the room row's lock until the transaction ends.
pub async fn next_seq(c: &impl GenericClient, room: Uuid) -> Result<i64, tokio_postgres::Error> {
    let row = c
        .query_one(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
            &[&room],
        )
        .await?;
    Ok(row.get(0))
}

/// Stores a message with `seq`; `None` if the author already sent `client_msg_id` (then the
/// caller rolls back, returning the seq).
pub async fn insert(
    c: &impl GenericClient,
    room: Uuid,
    seq: i64,
    author: Uuid,
    body: &str,
    client_msg_id: Option<&str>,
    reply_to: Option<i64>,
) -> Result<Option<(Uuid, OffsetDateTime)>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "INSERT INTO messages (id, room_id, seq, author_id, body, client_msg_id, reply_to) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (author_id, client_msg_id) DO NOTHING RETURNING id, created_at",
            &[&Uuid::new_v4(), &room, &seq, &author, &body, &client_msg_id, &reply_to],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Messages to store together, in posting order (one entry per message, all the same length).
#[derive(Debug, Default)]
pub struct NewMessages<'a> {
    pub ids: Vec<Uuid>,
    pub rooms: Vec<Uuid>,
    pub authors: Vec<Uuid>,
    pub bodies: Vec<&'a str>,
    pub client_msg_ids: Vec<Option<&'a str>>,
    /// The seq each message replies to, if any.
    pub reply_tos: Vec<Option<i64>>,
}

/// Stores several messages with one statement (`$1` ids, `$2` rooms, `$3` authors, `$4` bodies,
/// `$5` client_msg_ids, `$6` reply_tos; prepared once by the message writers, run with [`insert_many`]): each room's seqs are taken from its `last_seq`
/// in posting order, the messages inserted, and each author's read marker moved to their last
/// one. Returns `(seq, created_at)` per message, in order. The rooms must be locked. A
/// `client_msg_id` already used is an error (a unique violation): the caller looked for
/// repeats under the rooms' locks, so only another node can have raced it.
pub const INSERT_MANY_SQL: &str = "WITH t AS ( \
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[]) \
         WITH ORDINALITY AS t(id, room_id, author_id, body, client_msg_id, reply_to, ord)), \
     counts AS (SELECT room_id, count(*) AS n FROM t GROUP BY room_id), \
     taken AS ( \
       UPDATE rooms r SET last_seq = r.last_seq + counts.n FROM counts WHERE r.id = counts.room_id \
       RETURNING r.id, r.last_seq - counts.n AS base), \
     stored AS ( \
       INSERT INTO messages (id, room_id, seq, author_id, body, client_msg_id, reply_to) \
       SELECT t.id, t.room_id, taken.base + row_number() OVER (PARTITION BY t.room_id ORDER BY t.ord), \
              t.author_id, t.body, t.client_msg_id, t.reply_to \
       FROM t JOIN taken ON taken.id = t.room_id \
       RETURNING id, room_id, author_id, seq, created_at), \
     marked AS ( \
       UPDATE room_members m SET last_read_seq = greatest(m.last_read_seq, last.seq) \
       FROM (SELECT room_id, author_id, max(seq) AS seq FROM stored GROUP BY room_id, author_id) last \
       WHERE m.room_id = last.room_id AND m.user_id = last.author_id) \
     SELECT stored.seq, stored.created_at FROM stored JOIN t ON t.id = stored.id ORDER BY t.ord";

/// Runs [`INSERT_MANY_SQL`].
pub async fn insert_many(
    c: &impl GenericClient,
    statement: &Statement,
    new: &NewMessages<'_>,
) -> Result<Vec<(i64, OffsetDateTime)>, tokio_postgres::Error> {
    let rows = c
        .query(
            statement,
            &[
                &new.ids,
                &new.rooms,
                &new.authors,
                &new.bodies,
                &new.client_msg_ids,
                &new.reply_tos,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The messages authors sent with these client_msg_ids (`$1` authors, `$2` ids, pairwise), with
/// their author's id: prepared once by the message writers, run with [`by_client_msg_ids`].
pub fn by_client_msg_ids_sql() -> String {
    format!(
        "SELECT {COLUMNS}, m.author_id {FROM} \
         JOIN unnest($1::uuid[], $2::text[]) AS t(author_id, client_msg_id) \
           ON m.author_id = t.author_id AND m.client_msg_id = t.client_msg_id"
    )
}

/// Runs [`by_client_msg_ids_sql`].
pub async fn by_client_msg_ids(
    c: &impl GenericClient,
    statement: &Statement,
    authors: &[Uuid],
    ids: &[&str],
) -> Result<Vec<(Uuid, MessageRecord)>, tokio_postgres::Error> {
    let rows = c.query(statement, &[&authors, &ids]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get(9), MessageRecord::from_row_at(r, 0)?)))
        .collect())
}

/// The message `author` sent with `client_msg_id`, in whichever room.
pub async fn by_client_msg_id(
    c: &impl GenericClient,
    author: Uuid,
    client_msg_id: &str,
) -> Result<Option<MessageRecord>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE m.author_id = $1 AND m.client_msg_id = $2");
    let rows = c.query(&sql, &[&author, &client_msg_id]).await?;
    Ok(records(&rows).pop())
}

/// A message by its room and seq, with its author's id.
pub async fn by_seq(
    c: &impl GenericClient,
    room: Uuid,
    seq: i64,
) -> Result<Option<(MessageRecord, Option<Uuid>)>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS}, m.author_id {FROM} WHERE m.room_id = $1 AND m.seq = $2");
    let row = c.query_opt(&sql, &[&room, &seq]).await?;
    Ok(row.and_then(|r| MessageRecord::from_row_at(&r, 0).map(|m| (m, r.get(9)))))
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryPage {
    /// Newest first, seqs below this one (`i64::MAX`: the newest messages).
    Before(i64),
    /// Oldest first, seqs above this one.
    After(i64),
}

pub async fn history(
    c: &impl GenericClient,
    room: Uuid,
    page: HistoryPage,
    limit: i64,
) -> Result<Vec<MessageRecord>, tokio_postgres::Error> {
    let (cond, order, bound) = match page {
        HistoryPage::Before(seq) => ("m.seq < $2", "DESC", seq),
        HistoryPage::After(seq) => ("m.seq > $2", "ASC", seq),
    };
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE m.room_id = $1 AND {cond} ORDER BY m.seq {order} LIMIT $3");
    let params: [(&(dyn ToSql + Sync), Type); 3] = [(&room, Type::UUID), (&bound, Type::INT8), (&limit, Type::INT8)];
    Ok(records(&c.query_typed(&sql, &params).await?))
}

pub async fn edit(c: &impl GenericClient, id: Uuid, body: &str) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE messages SET body = $2, edited_at = now() WHERE id = $1 AND deleted_at IS NULL",
        &[&id, &body],
    )
    .await?;
    Ok(())
}

/// Turns a message into a tombstone: the body goes, the seq stays.
pub async fn tombstone(c: &impl GenericClient, id: Uuid, by: Option<Uuid>) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE messages SET body = NULL, deleted_at = now(), deleted_by = $2 WHERE id = $1 AND deleted_at IS NULL",
        &[&id, &by],
    )
    .await?;
    Ok(())
}

/// Moves `user`'s read marker forward to `seq` (never back); returns the marker, or `None`
/// if `user` is not a member.
pub async fn mark_read(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    seq: i64,
) -> Result<Option<(i64, bool)>, tokio_postgres::Error> {
    // The marker before, read under the row's lock, tells whether it moved.
    let row = c
        .query_opt(
            "UPDATE room_members m SET last_read_seq = greatest(m.last_read_seq, $3) \
             FROM (SELECT last_read_seq FROM room_members WHERE room_id = $1 AND user_id = $2 FOR UPDATE) old \
             WHERE m.room_id = $1 AND m.user_id = $2 RETURNING m.last_read_seq, old.last_read_seq",
            &[&room, &user, &seq],
        )
        .await?;
    Ok(row.map(|r| {
        let (new, old): (i64, i64) = (r.get(0), r.get(1));
        (new, new > old)
    }))
}

/// Unread counts stop here: a badge shows "999+" long before, and counting a million unread
/// messages would make every room list slow.
pub const UNREAD_CAP: i64 = 1000;

/// Messages after `seq` that `user` did not write and that are not deleted, up to
/// `UNREAD_CAP`.
pub async fn unread_count(
    c: &impl GenericClient,
    room: Uuid,
    user: Uuid,
    seq: i64,
) -> Result<i64, tokio_postgres::Error> {
    let sql = format!("SELECT {}", super::unread::unread_sql("$2", "$1", "$3"));
    let row = c.query_one(&sql, &[&room, &user, &seq]).await?;
    Ok(row.get(0))
}

/// The columns [`MessageRecord::from_row_at`] reads, and the `FROM` they are read over (`m`,
/// `au`), for queries kept in other modules (search): a column added to a message is then
/// added to every query that shows one.
pub(crate) const RECORD_COLUMNS: &str = COLUMNS;
pub(crate) const RECORD_FROM: &str = FROM;
