//! Full-text search over the messages a user may read: the rooms they are a member of and the
//! public rooms they are not banned from (`access` states the rule; `db::search` applies the
//! same rule inside the query). Hits are ranked, then newest first, and paginated with an
//! opaque cursor that carries the last hit's position in that order.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, Action};
use super::{Actor, Chat, Limit, MessageView, Page};
use crate::db::search::{self, SearchCursor};
use crate::error::{Error, Result};

pub const SEARCH_LIMIT: Limit = Limit { default: 20, max: 100 };

/// Longest search text, in characters.
pub const SEARCH_QUERY_MAX: usize = 200;

/// A search text: trimmed, 1–200 characters, on one line. Parsed further by PostgreSQL's
/// `websearch_to_tsquery` ("phrases", `or`, `-word`), which never fails on any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(input: &str) -> Result<Self> {
        let q = input.trim();
        let len = q.chars().count();
        if !(1..=SEARCH_QUERY_MAX).contains(&len) || q.chars().any(char::is_control) {
            return Err(Error::invalid(
                "invalid_query",
                format!("q must be 1-{SEARCH_QUERY_MAX} characters on one line"),
            ));
        }
        Ok(Self(q.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it holds anything to search for: the 'simple' parser keeps only words (letters
    /// and digits); text without any (`!!!`, `"" -`) matches nothing.
    fn has_words(&self) -> bool {
        self.0.chars().any(char::is_alphanumeric)
    }
}

/// The room a hit is in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchRoom {
    pub id: Uuid,
    /// `null` for a direct conversation.
    #[schema(required = true)]
    pub name: Option<String>,
    /// `public`, `private` or `direct`.
    pub visibility: String,
}

/// One search result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchHit {
    /// The message as history shows it.
    pub message: MessageView,
    pub room: SearchRoom,
    /// Plain text (not HTML: escape it before display) from the body, the matching words
    /// between `«` and `»`, up to two fragments joined by ` … `.
    pub snippet: String,
    /// Relevance (`ts_rank`); higher first.
    pub rank: f32,
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery<'a> {
    pub q: &'a str,
    pub room_id: Option<Uuid>,
    /// `next_cursor` of the previous page.
    pub before: Option<&'a str>,
    pub limit: Option<i64>,
}

impl Chat {
    /// Messages matching `query.q` in the rooms the actor may read (or in `query.room_id`
    /// only: `room_not_found` unless the actor may read it), best first.
    pub async fn search(&self, actor: &Actor, query: &SearchQuery<'_>) -> Result<Page<SearchHit>> {
        let text = SearchText::parse(query.q)?;
        let limit = SEARCH_LIMIT.apply(query.limit)?;
        let after = query.before.map(decode_cursor).transpose()?;
        let conn = self.db.conn().await?;
        if let Some(room) = query.room_id {
            access::load(&*conn, actor, room, false).await?.require(Action::Read)?;
        }
        if !text.has_words() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let rows = search::search(
            &*conn,
            actor.user_id(),
            query.room_id,
            text.as_str(),
            after.as_ref(),
            limit + 1,
        )
        .await?;
        // `Page::from_rows` encodes the cursor (base64url); its key is written here.
        Page::from_rows(
            rows,
            limit,
            |hit| cursor_key(&hit.cursor()),
            |hit| {
                Ok(SearchHit {
                    room: SearchRoom {
                        id: hit.message.room_id,
                        name: hit.room_name,
                        visibility: hit.room_visibility,
                    },
                    snippet: hit.snippet,
                    rank: hit.rank,
                    message: MessageView::from(hit.message),
                })
            },
        )
    }
}

/// `rank bits.unix microseconds.room.seq`: the rank as its exact bits, so the next page starts
/// exactly after the last hit.
fn cursor_key(c: &SearchCursor) -> String {
    let micros = c.created_at.unix_timestamp_nanos() / 1000;
    format!("{}.{micros}.{}.{}", c.rank.to_bits(), c.room_id, c.seq)
}

/// A cursor [`cursor_key`] wrote, or `invalid_cursor`.
fn decode_cursor(cursor: &str) -> Result<SearchCursor> {
    let key = crate::page::decode(cursor)?;
    parse_cursor_key(&key).ok_or_else(crate::page::invalid_cursor)
}

fn parse_cursor_key(key: &str) -> Option<SearchCursor> {
    let mut parts = key.split('.');
    let (rank, micros, room, seq) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if !digits(rank) || !digits(micros) || !digits(seq) {
        return None;
    }
    let rank = f32::from_bits(rank.parse().ok()?);
    let micros: i64 = micros.parse().ok()?;
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
    let seq: i64 = seq.parse().ok()?;
    let room_id = Uuid::parse_str(room).ok()?;
    // Exactly what this server writes: a finite rank, a positive seq, the hyphenated id.
    (rank.is_finite() && rank >= 0.0 && seq > 0 && room_id.hyphenated().to_string() == room).then_some(SearchCursor {
        rank,
        created_at,
        room_id,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_exactly() {
        let c = SearchCursor {
            rank: 0.0607927,
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000).unwrap(),
            room_id: Uuid::new_v4(),
            seq: 42,
        };
        let encoded = crate::page::encode(&cursor_key(&c));
        assert_eq!(decode_cursor(&encoded).unwrap(), c);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        let room = Uuid::new_v4();
        for bad in [
            String::new(),
            "1.2.3".into(),
            format!("1.2.{room}.0"),
            format!("1.2.{room}.5.6"),
            format!("{}.2.{room}.5", f32::NAN.to_bits()),
            format!("+1.2.{room}.5"),
            format!("1.2.{}.5", room.simple()),
            format!("x.2.{room}.5"),
        ] {
            let err = decode_cursor(&crate::page::encode(&bad)).unwrap_err();
            assert_eq!(err.code(), "invalid_cursor", "{bad}");
        }
        assert_eq!(decode_cursor("not base64!").unwrap_err().code(), "invalid_cursor");
    }

    #[test]
    fn search_text_is_trimmed_bounded_and_single_line() {
        assert_eq!(SearchText::parse("  hello  ").unwrap().as_str(), "hello");
        for bad in ["", "   ", "a\nb", &"x".repeat(SEARCH_QUERY_MAX + 1)] {
            assert_eq!(SearchText::parse(bad).unwrap_err().code(), "invalid_query", "{bad:?}");
        }
        assert!(SearchText::parse(&"é".repeat(SEARCH_QUERY_MAX)).is_ok());
        assert!(!SearchText::parse("!!! \"\" -").unwrap().has_words());
    }
}
