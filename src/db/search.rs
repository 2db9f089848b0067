//! Full-text search over `messages.search`, the tsvector PostgreSQL keeps current itself
//! (a generated column, 'simple' configuration; migration 0004), through its GIN index
//! `messages_search_idx`, which holds live messages only (`WHERE deleted_at IS NULL`).
//!
//! One statement does the whole search, in three steps whose costs are bounded separately:
//! 1. the rooms the viewer may read (`readable`): members' rooms and public rooms, minus the
//!    rooms they are banned from — the same rule as `chat::access` — joined to the matches (a
//!    semi-join, so no other room's text is ever read into a hit). Written as `IN (SELECT …)`,
//!    not `= ANY(ARRAY(…))`: given an array of ~1,000 rooms the planner ANDed the GIN bitmap
//!    with a bitmap of every message of those rooms from the `(room_id, seq)` index (400 ms on
//!    a million messages, for a word found 6,000 times; 30 ms without);
//! 2. the matches (GIN bitmap scan), of which only the newest [`WINDOW`] are kept: ranking
//!    (`ts_rank` reads each vector) is done on at most that many, whatever the term;
//! 3. the page, in rank order (ties: newest first) after the cursor; only its rows are read
//!    in full and get a `ts_headline` snippet, which re-parses the body and is the costly part.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::messages::{MessageRecord, RECORD_COLUMNS, RECORD_FROM};

/// Matches ranked per search: the newest this many. A term found in more messages (a very
/// common word) is searched among its newest matches only, so the cost of a search has a bound
/// however common its terms are; the rarer terms people actually search for never reach it.
pub const WINDOW: i64 = 1000;

/// Where a match is highlighted in a snippet: plain text, not markup.
pub const START_SEL: &str = "«";
pub const STOP_SEL: &str = "»";

/// Position in the result order: `rank` descending, then newest first, then room and seq.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchCursor {
    pub rank: f32,
    pub created_at: OffsetDateTime,
    pub room_id: Uuid,
    pub seq: i64,
}

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub message: MessageRecord,
    pub rank: f32,
    pub room_name: Option<String>,
    pub room_visibility: String,
    pub snippet: String,
}

impl SearchHit {
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor {
            rank: self.rank,
            created_at: self.message.created_at,
            room_id: self.message.room_id,
            seq: self.message.seq,
        }
    }
}

/// Live messages matching `query` (`websearch_to_tsquery` syntax: words, "phrases", `or`,
/// `-word`) in rooms `viewer` may read (`None`: every room, for the operator), optionally in
/// `room` only, after `after`, at most `limit`.
pub async fn search(
    c: &impl GenericClient,
    viewer: Option<Uuid>,
    room: Option<Uuid>,
    query: &str,
    after: Option<&SearchCursor>,
    limit: i64,
) -> Result<Vec<SearchHit>, tokio_postgres::Error> {
    // ts_headline's options: up to two fragments of 5–20 words around the matches; short
    // words are not dropped (chat is full of them).
    let options = format!(
        "StartSel={START_SEL}, StopSel={STOP_SEL}, MaxWords=20, MinWords=5, ShortWord=0, \
         MaxFragments=2, FragmentDelimiter=\" … \""
    );
    let sql = format!(
        "WITH readable AS ( \
           SELECT r.id FROM rooms r \
           WHERE ($2::uuid IS NULL OR r.id = $2) \
             AND ($1::uuid IS NULL OR ( \
                   (r.visibility = 'public' \
                    OR EXISTS (SELECT 1 FROM room_members rm WHERE rm.room_id = r.id AND rm.user_id = $1)) \
                   AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = $1)))), \
         matches AS ( \
           SELECT s.room_id, s.seq, s.created_at, s.search FROM messages s \
           WHERE s.search @@ websearch_to_tsquery('simple', $3) AND s.deleted_at IS NULL \
             AND s.room_id IN (SELECT id FROM readable) \
           ORDER BY s.created_at DESC LIMIT {WINDOW}), \
         ranked AS ( \
           SELECT room_id, seq, created_at, ts_rank(search, websearch_to_tsquery('simple', $3)) AS rank \
           FROM matches), \
         page AS ( \
           SELECT * FROM ranked \
           WHERE $4::real IS NULL OR (rank, created_at, room_id, seq) < ($4, $5::timestamptz, $6::uuid, $7::bigint) \
           ORDER BY rank DESC, created_at DESC, room_id DESC, seq DESC LIMIT $8) \
         SELECT p.rank, r.name, r.visibility, \
                ts_headline('simple', m.body, websearch_to_tsquery('simple', $3), $9), {RECORD_COLUMNS} \
         {RECORD_FROM} \
         JOIN page p ON p.room_id = m.room_id AND p.seq = m.seq \
         JOIN rooms r ON r.id = m.room_id \
         ORDER BY p.rank DESC, p.created_at DESC, p.room_id DESC, p.seq DESC"
    );
    let (rank, created_at, room_id, seq) = match after {
        Some(a) => (Some(a.rank), Some(a.created_at), Some(a.room_id), Some(a.seq)),
        None => (None, None, None, None),
    };
    let params: [(&(dyn ToSql + Sync), Type); 9] = [
        (&viewer, Type::UUID),
        (&room, Type::UUID),
        (&query, Type::TEXT),
        (&rank, Type::FLOAT4),
        (&created_at, Type::TIMESTAMPTZ),
        (&room_id, Type::UUID),
        (&seq, Type::INT8),
        (&limit, Type::INT8),
        (&options, Type::TEXT),
    ];
    let rows = c.query_typed(&sql, &params).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(SearchHit {
                rank: r.get(0),
                room_name: r.get(1),
                room_visibility: r.get(2),
                snippet: r.get::<_, Option<String>>(3).unwrap_or_default(),
                message: MessageRecord::from_row_at(r, 4)?,
            })
        })
        .collect())
}
