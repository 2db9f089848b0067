//! Mentions: `@username` in a message body names a member of the room.
//!
//! A body is scanned for candidate names when the message is stored (and again when it is
//! edited); the candidates are resolved against the room's *members* in the transaction that
//! stores the message, under the room's lock, so "member" means a member when the message got
//! its seq. What is resolved is stored in `message_mentions` and carried by the message as
//! `mentions: [{user_id, username}]`, in order of first appearance. Names that are not members
//! (or no one's), and the author naming themself, are ignored.
//!
//! A mention counts towards the member's `mention_count` while it is after their read marker and
//! its message is not deleted; the hub pushes a `mention` frame to the member's connections when
//! the message is published (see `ws::hub`).
//!
//! Rules of the scan (pure, unit-tested below):
//! - `@` starts a candidate only at the start of the body or after a character that cannot be
//!   part of a name or an address (`a@bob.com` names no one);
//! - the name is the longest run of `[A-Za-z0-9_.-]` after it, less trailing dots (sentence
//!   punctuation: "thanks @bob."); a run followed by another `@` is an address, not a mention;
//! - it must then be 3 to 32 characters; it is lower-cased (usernames are), and repeats count
//!   once;
//! - at most [`MAX_MENTIONS`] distinct candidates are considered per message.

use serde::{Deserialize, Serialize};
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

use super::{MessageView, RoomView};
use crate::db::mentions as db;
use crate::db::unread;

/// Distinct `@names` looked up per message at most: a body full of names costs a bounded lookup
/// and notifies a bounded number of people.
pub const MAX_MENTIONS: usize = 50;

const NAME_MIN: usize = 3;
const NAME_MAX: usize = 32;

/// A member named by a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mention {
    pub user_id: Uuid,
    pub username: String,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The distinct, lower-cased `@names` of `body`, in order of first appearance, at most
/// [`MAX_MENTIONS`].
pub fn candidates(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && prev.is_none_or(|p| !(name_char(p) || p == '@'));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &body[i + 1..];
        let run_len = rest.find(|ch: char| !name_char(ch)).unwrap_or(rest.len());
        let run = &rest[..run_len];
        let followed_by_at = rest[run_len..].starts_with('@');
        let name = run.trim_end_matches('.');
        if !followed_by_at && (NAME_MIN..=NAME_MAX).contains(&name.len()) {
            let name = name.to_ascii_lowercase();
            if !found.contains(&name) {
                found.push(name);
                if found.len() == MAX_MENTIONS {
                    break;
                }
            }
        }
        // The run is consumed: a later `@` inside it is not a new start.
        for _ in 0..run.chars().count() {
            prev = chars.next().map(|(_, ch)| ch);
        }
    }
    found
}

/// Orders `resolved` as their names first appear in `names` (what [`candidates`] found).
pub(super) fn in_order(names: &[String], mut resolved: Vec<Mention>) -> Vec<Mention> {
    resolved.sort_by_key(|m| names.iter().position(|n| *n == m.username).unwrap_or(usize::MAX));
    resolved
}

/// Resolves and stores the mentions of new messages (each with its author's id), in the
/// transaction that stores them, and sets each message's `mentions`.
pub(super) async fn resolve_batch<'a>(
    c: &impl GenericClient,
    statement: &Statement,
    messages: impl Iterator<Item = (Uuid, &'a mut MessageView)>,
) -> Result<(), tokio_postgres::Error> {
    let mut all = db::Candidates::default();
    let mut named: Vec<(Vec<String>, &'a mut MessageView)> = Vec::new();
    for (author, message) in messages {
        let names = candidates(message.body.as_deref().unwrap_or_default());
        if !names.is_empty() {
            all.push(message.room_id, message.seq, author, &names);
            named.push((names, message));
        }
    }
    let mut resolved = db::resolve_many(c, statement, &all).await?;
    for (names, message) in named {
        let found = resolved.remove(&(message.room_id, message.seq)).unwrap_or_default();
        message.mentions = in_order(&names, found);
    }
    Ok(())
}

/// Resolves and stores the mentions of one message (stored alone, or edited) and sets them.
pub(super) async fn resolve_one(
    c: &impl GenericClient,
    author: Uuid,
    message: &mut MessageView,
) -> Result<(), tokio_postgres::Error> {
    let names = candidates(message.body.as_deref().unwrap_or_default());
    let found = db::resolve(c, message.room_id, message.seq, author, &names).await?;
    message.mentions = in_order(&names, found);
    Ok(())
}

/// After an edit: the message's mentions are resolved again from its new body; returns the
/// members it names now and did not before (they are notified).
pub(super) async fn re_resolve(
    c: &impl GenericClient,
    room: Uuid,
    seq: i64,
    author: Option<Uuid>,
    body: &str,
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let before = db::clear(c, room, seq).await?;
    let names = candidates(body);
    let Some(author) = author else {
        return Ok(Vec::new());
    };
    let now = db::resolve(c, room, seq, author, &names).await?;
    Ok(now
        .into_iter()
        .map(|m| m.user_id)
        .filter(|u| !before.contains(u))
        .collect())
}

/// Fills in the mentions of messages read from the database (history, a replay, an edit). A
/// deleted message names no one.
pub async fn attach(c: &impl GenericClient, messages: &mut [MessageView]) -> Result<(), tokio_postgres::Error> {
    let (rooms, seqs): (Vec<Uuid>, Vec<i64>) = messages
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| (m.room_id, m.seq))
        .unzip();
    let mut found = db::of_messages(c, &rooms, &seqs).await?;
    for m in messages.iter_mut().filter(|m| !m.deleted) {
        if let Some(mentions) = found.remove(&(m.room_id, m.seq)) {
            // Stored unordered: the body tells their order.
            m.mentions = in_order(&candidates(m.body.as_deref().unwrap_or_default()), mentions);
        }
    }
    Ok(())
}

/// Fills in what the room list adds for mentions: the caller's `mention_count` in the rooms
/// they are a member of, and the mentions of each room's last message. Two queries, sent
/// together.
pub(super) async fn fill_rooms(
    c: &impl GenericClient,
    viewer: Option<Uuid>,
    rooms: &mut [RoomView],
) -> Result<(), tokio_postgres::Error> {
    let mine: Vec<Uuid> = rooms.iter().filter(|r| r.my_role.is_some()).map(|r| r.id).collect();
    let mut last: Vec<MessageView> = rooms.iter().filter_map(|r| r.last_message.clone()).collect();
    let (counts, attached) = tokio::join!(
        async {
            match viewer {
                Some(user) => unread::mention_counts(c, user, &mine).await,
                None => Ok(Default::default()),
            }
        },
        attach(c, &mut last)
    );
    let counts = counts?;
    attached?;
    let mut last = last.into_iter();
    for room in rooms.iter_mut() {
        if room.my_role.is_some() {
            room.mention_count = Some(counts.get(&room.id).copied().unwrap_or(0));
        }
        if room.last_message.is_some() {
            room.last_message = last.next();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_lower_cased_once_in_order() {
        assert_eq!(
            candidates("@Bob hi @alice, and @BOB again (@carol) @dave."),
            ["bob", "alice", "carol", "dave"]
        );
        assert_eq!(candidates("@bob:@eve"), ["bob", "eve"]);
    }

    #[test]
    fn addresses_and_odd_tokens_are_not_mentions() {
        assert!(candidates("write to a@bob.com").is_empty());
        assert!(candidates("write to bob@example.com").is_empty());
        assert!(candidates("@bob@example.com").is_empty());
        assert!(candidates("@@bob").is_empty());
        assert!(candidates("@ab @ @").is_empty());
        assert!(candidates(&format!("@{}", "x".repeat(33))).is_empty());
        assert_eq!(candidates(&format!("@{}", "x".repeat(32))).len(), 1);
        assert_eq!(candidates("@a.b.c"), ["a.b.c"]);
        assert_eq!(candidates("héllo @zoë"), Vec::<String>::new(), "zo is too short");
    }

    #[test]
    fn at_most_max_mentions_are_considered() {
        let body: String = (0..80).map(|i| format!("@user{i} ")).collect();
        let found = candidates(&body);
        assert_eq!(found.len(), MAX_MENTIONS);
        assert_eq!(found[0], "user0");
    }
}
