//! What a reply shows of the message it answers: the parent's seq, author, the start of its body
//! and whether it was deleted. `messages.reply_to` names the parent by its seq in the same room
//! (no foreign key: a parent deleted later stays as a tombstone, and so does its seq).

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// Characters of a parent's body read for its quote: one more than a quote holds, so that a
/// longer body is known to be cut without reading all of it.
pub const QUOTE_READ: i32 = 101;

/// A message that is replied to, as a reply shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub room_id: Uuid,
    pub seq: i64,
    /// `None` once its author's account is deleted.
    pub author: Option<String>,
    /// The first `QUOTE_READ` characters of its body; `None` once deleted.
    pub head: Option<String>,
    pub deleted_at: Option<OffsetDateTime>,
}

/// The messages at `(rooms[i], seqs[i])`, those that exist.
pub async fn parents(
    c: &impl GenericClient,
    rooms: &[Uuid],
    seqs: &[i64],
) -> Result<Vec<Parent>, tokio_postgres::Error> {
    let sql = "SELECT p.room_id, p.seq, pa.username, left(p.body, $3), p.deleted_at \
               FROM unnest($1::uuid[], $2::bigint[]) AS t(room_id, seq) \
               JOIN messages p ON p.room_id = t.room_id AND p.seq = t.seq \
               LEFT JOIN users pa ON pa.id = p.author_id";
    let params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&rooms, Type::UUID_ARRAY),
        (&seqs, Type::INT8_ARRAY),
        (&QUOTE_READ, Type::INT4),
    ];
    let rows = c.query_typed(sql, &params).await?;
    Ok(rows.iter().map(|r| parent(r, 0)).collect())
}

fn parent(r: &tokio_postgres::Row, at: usize) -> Parent {
    Parent {
        room_id: r.get(at),
        seq: r.get(at + 1),
        author: r.get(at + 2),
        head: r.get(at + 3),
        deleted_at: r.get(at + 4),
    }
}

/// The parents of those of the messages `ids` that are replies, by the reply's id.
pub async fn parents_of(c: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<(Uuid, Parent)>, tokio_postgres::Error> {
    let sql = "SELECT m.id, p.room_id, p.seq, pa.username, left(p.body, $2), p.deleted_at \
               FROM messages m \
               JOIN messages p ON p.room_id = m.room_id AND p.seq = m.reply_to \
               LEFT JOIN users pa ON pa.id = p.author_id \
               WHERE m.id = ANY($1) AND m.reply_to IS NOT NULL";
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&ids, Type::UUID_ARRAY), (&QUOTE_READ, Type::INT4)];
    let rows = c.query_typed(sql, &params).await?;
    Ok(rows.iter().map(|r| (r.get(0), parent(r, 1))).collect())
}
