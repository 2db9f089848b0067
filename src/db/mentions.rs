//! The `message_mentions` table: which members a message names (see `chat::mentions` for how a
//! body's `@names` are found). Rows are written in the transaction that stores (or edits) the
//! message, under its room's lock; a deleted message keeps its rows, but every count and every
//! view leaves deleted messages out.

use std::collections::HashMap;

use tokio_postgres::{GenericClient, Row, Statement};
use uuid::Uuid;

use crate::chat::mentions::Mention;

/// Resolves and stores mentions for several messages at once: `$1` rooms, `$2` seqs, `$3`
/// authors, `$4` lower-cased names, one entry per (message, candidate name). A name counts when
/// it is a member of the message's room other than the author. Returns `(room, seq, user id,
/// username)` per mention stored. Prepared once by the message writers (run with
/// [`resolve_many`]); also run as text for a message stored alone or edited.
pub const RESOLVE_MANY_SQL: &str = "WITH t AS ( \
       SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[]) AS t(room_id, seq, author_id, name)), \
     ins AS ( \
       INSERT INTO message_mentions (room_id, seq, user_id) \
       SELECT DISTINCT t.room_id, t.seq, u.id FROM t \
       JOIN users u ON lower(u.username) = t.name \
       JOIN room_members m ON m.room_id = t.room_id AND m.user_id = u.id \
       WHERE u.id IS DISTINCT FROM t.author_id \
       ON CONFLICT DO NOTHING \
       RETURNING room_id, seq, user_id) \
     SELECT ins.room_id, ins.seq, ins.user_id, u.username FROM ins JOIN users u ON u.id = ins.user_id";

/// Candidate names of messages to resolve, flattened: one entry per (message, name).
#[derive(Debug, Default)]
pub struct Candidates {
    pub rooms: Vec<Uuid>,
    pub seqs: Vec<i64>,
    pub authors: Vec<Uuid>,
    pub names: Vec<String>,
}

impl Candidates {
    pub fn push(&mut self, room: Uuid, seq: i64, author: Uuid, names: &[String]) {
        for name in names {
            self.rooms.push(room);
            self.seqs.push(seq);
            self.authors.push(author);
            self.names.push(name.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The mentions stored, by message (room, seq); order within a message is arbitrary.
pub type Resolved = HashMap<(Uuid, i64), Vec<Mention>>;

fn resolved(rows: &[Row]) -> Resolved {
    let mut out: Resolved = HashMap::new();
    for r in rows {
        out.entry((r.get(0), r.get(1))).or_default().push(Mention {
            user_id: r.get(2),
            username: r.get(3),
        });
    }
    out
}

/// Runs the prepared [`RESOLVE_MANY_SQL`].
pub async fn resolve_many(
    c: &impl GenericClient,
    statement: &Statement,
    candidates: &Candidates,
) -> Result<Resolved, tokio_postgres::Error> {
    if candidates.is_empty() {
        return Ok(Resolved::new());
    }
    let rows = c
        .query(
            statement,
            &[
                &candidates.rooms,
                &candidates.seqs,
                &candidates.authors,
                &candidates.names,
            ],
        )
        .await?;
    Ok(resolved(&rows))
}

/// Resolves and stores the mentions of one message (stored alone, or edited).
pub async fn resolve(
    c: &impl GenericClient,
    room: Uuid,
    seq: i64,
    author: Uuid,
    names: &[String],
) -> Result<Vec<Mention>, tokio_postgres::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut candidates = Candidates::default();
    candidates.push(room, seq, author, names);
    let rows = c
        .query(
            RESOLVE_MANY_SQL,
            &[
                &candidates.rooms,
                &candidates.seqs,
                &candidates.authors,
                &candidates.names,
            ],
        )
        .await?;
    Ok(resolved(&rows).remove(&(room, seq)).unwrap_or_default())
}

/// Forgets the mentions of one message (before an edit resolves them again); returns who was
/// mentioned.
pub async fn clear(c: &impl GenericClient, room: Uuid, seq: i64) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let rows = c
        .query(
            "DELETE FROM message_mentions WHERE room_id = $1 AND seq = $2 RETURNING user_id",
            &[&room, &seq],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The mentions of messages (`rooms`, `seqs` pairwise), by message; order within a message is
/// arbitrary.
pub async fn of_messages(
    c: &impl GenericClient,
    rooms: &[Uuid],
    seqs: &[i64],
) -> Result<Resolved, tokio_postgres::Error> {
    if rooms.is_empty() {
        return Ok(Resolved::new());
    }
    let rows = c
        .query(
            "SELECT mm.room_id, mm.seq, u.id, u.username \
             FROM unnest($1::uuid[], $2::bigint[]) AS t(room_id, seq) \
             JOIN message_mentions mm ON mm.room_id = t.room_id AND mm.seq = t.seq \
             JOIN users u ON u.id = mm.user_id",
            &[&rooms, &seqs],
        )
        .await?;
    Ok(resolved(&rows))
}
