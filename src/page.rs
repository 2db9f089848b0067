//! Cursor pagination, one way for every list (users, rooms, members, bans, messages).
//!
//! A list query fetches `limit + 1` rows past the cursor, in the order of a unique key; the
//! extra row only says "there is more" and is never returned. The cursor is the key of the last
//! row returned, base64url-encoded so clients treat it as opaque; a cursor this server could not
//! have written is refused with 422 `invalid_cursor` rather than silently restarting the list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::users::Username;

/// One page of a cursor-paginated list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` (for message history: as `before`/`after`) for the next page;
    /// `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` rows: `cursor` names a row's key (left unencoded),
    /// `view` turns a row into what the client sees.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        cursor: impl Fn(&R) -> String,
        view: impl Fn(R) -> Result<T>,
    ) -> Result<Self> {
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next_cursor = if more {
            rows.last().map(|r| encode(&cursor(r)))
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(view).collect::<Result<_>>()?,
            next_cursor,
        })
    }
}

/// Bounds of a `limit` parameter.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub default: i64,
    pub max: i64,
}

impl Limit {
    pub fn apply(self, requested: Option<i64>) -> Result<i64> {
        let limit = requested.unwrap_or(self.default);
        if !(1..=self.max).contains(&limit) {
            return Err(self.error());
        }
        Ok(limit)
    }

    pub fn error(self) -> Error {
        Error::invalid(
            "invalid_limit",
            format!("limit must be a whole number from 1 to {}", self.max),
        )
    }
}

/// Longest `q` search text accepted by list endpoints.
pub const QUERY_MAX: usize = 64;

/// A list's `q` filter: trimmed, `None` when blank, bounded and single-line.
pub fn search_query(q: Option<&str>) -> Result<Option<&str>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > QUERY_MAX || q.chars().any(char::is_control)) {
        return Err(Error::invalid(
            "invalid_query",
            format!("q must be at most {QUERY_MAX} characters, without control characters"),
        ));
    }
    Ok(q)
}

pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key inside a cursor this server wrote, if it is one.
pub fn decode(cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid_cursor)
}

/// A cursor over a list ordered by username.
pub fn decode_username(cursor: &str) -> Result<String> {
    let name = decode(cursor)?;
    Username::parse(&name)
        .map(|n| n.as_str().to_owned())
        .map_err(|_| invalid_cursor())
}

pub fn invalid_cursor() -> Error {
    Error::invalid("invalid_cursor", "cursor is not one this server returned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_makes_a_cursor_to_the_last_kept_row() {
        let page = Page::from_rows(vec!["ann", "bob", "cid"], 2, |r| r.to_string(), Ok).unwrap();
        assert_eq!(page.items, ["ann", "bob"]);
        assert_eq!(decode_username(page.next_cursor.as_deref().unwrap()).unwrap(), "bob");
        let last = Page::from_rows(vec!["ann"], 2, |r| r.to_string(), Ok).unwrap();
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn foreign_cursors_and_queries_are_refused() {
        for bad in ["!!", &encode("x y"), &encode("")] {
            assert_eq!(decode_username(bad).unwrap_err().code(), "invalid_cursor", "{bad}");
        }
        assert_eq!(search_query(Some("  ")).unwrap(), None);
        assert!(search_query(Some(&"q".repeat(QUERY_MAX + 1))).is_err());
        assert!(search_query(Some("a\nb")).is_err());
    }
}
