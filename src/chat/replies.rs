//! Replies: a message may answer an earlier message of its room (`reply_to`, its seq). A
//! returned message shows its parent as a [`ReplyTo`] — seq, author and the start of its body,
//! or a tombstone once the parent is deleted — read when the message is read, so an edit or a
//! delete of the parent shows in every reply at once. `context` reads the messages around one
//! (a client jumping to the message a reply answers).
//!
//! A reply is checked under its room's lock, when it is stored (`ingest`, `Chat::store`): the
//! parent must exist in the room (so its seq is below the reply's) and not be deleted. A parent
//! deleted after that is shown as a tombstone.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::access::{self, Action};
use super::messages::message_not_found;
use super::reactions::Reaction;
use super::{Actor, Chat, MessageView, Page, MESSAGES_LIMIT};
use crate::db::messages::{self, HistoryPage};
use crate::db::reactions;
use crate::db::replies::{self, Parent};
use crate::error::{Error, Result};

/// The longest quote of a parent, in characters.
pub const QUOTE_MAX: usize = 100;

/// The message a reply answers, as the reply shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ReplyTo {
    pub seq: i64,
    /// The parent's author; `null` once their account is deleted.
    #[schema(required = true)]
    pub author: Option<String>,
    /// The start of the parent's body (at most 100 characters, cut between characters);
    /// `null` once the parent is deleted.
    #[schema(required = true)]
    pub quote: Option<String>,
    /// Whether `quote` is only the start of the body.
    pub truncated: bool,
    /// The parent was deleted: `quote` is `null`.
    pub deleted: bool,
}

impl From<Parent> for ReplyTo {
    fn from(p: Parent) -> Self {
        let deleted = p.deleted_at.is_some();
        let (quote, truncated) = match p.head.filter(|_| !deleted) {
            Some(head) => {
                let (q, cut) = quote(&head);
                (Some(q), cut)
            }
            None => (None, false),
        };
        Self {
            seq: p.seq,
            author: p.author,
            quote,
            truncated,
            deleted,
        }
    }
}

/// The first `QUOTE_MAX` characters of `body`, and whether it was cut.
fn quote(body: &str) -> (String, bool) {
    match body.char_indices().nth(QUOTE_MAX) {
        Some((end, _)) => (body[..end].to_owned(), true),
        None => (body.to_owned(), false),
    }
}

/// `reply_to` as a client gives it: a seq (1 or more). Whether it names a message is known only
/// under the room's lock ([`check_parent`]).
pub(super) fn parse_reply_to(seq: Option<i64>) -> Result<Option<i64>> {
    match seq {
        Some(s) if s < 1 => Err(invalid_reply_to(s)),
        other => Ok(other),
    }
}

fn invalid_reply_to(seq: i64) -> Error {
    Error::invalid(
        "invalid_reply_to",
        format!("reply_to must be the seq of an earlier message of this room; there is none with seq {seq}"),
    )
}

/// The parent a reply may be stored with: it exists and is not deleted.
pub(super) fn check_parent(seq: i64, parent: Option<&Parent>) -> Result<ReplyTo> {
    let parent = parent.ok_or_else(|| invalid_reply_to(seq))?;
    if parent.deleted_at.is_some() {
        return Err(Error::conflict(
            "reply_to_deleted",
            format!("the message with seq {seq} was deleted: it cannot be replied to"),
        ));
    }
    Ok(ReplyTo::from(parent.clone()))
}

/// Fills in what stored messages show besides their own row: their parent (`reply_to`), their
/// reactions (`me` for `reader`'s) and their mentions. One round trip (three pipelined
/// queries) for any number of messages.
pub async fn decorate(
    c: &impl GenericClient,
    reader: Option<Uuid>,
    messages: &mut [MessageView],
) -> Result<(), tokio_postgres::Error> {
    let readers = vec![reader; messages.len()];
    decorate_as(c, &readers, messages).await
}

/// [`decorate`], each message for its own reader (`readers[i]` reads `messages[i]`).
pub async fn decorate_as(
    c: &impl GenericClient,
    readers: &[Option<Uuid>],
    messages: &mut [MessageView],
) -> Result<(), tokio_postgres::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let (parents, tallies, ()) = tokio::try_join!(
        replies::parents_of(c, &ids),
        reactions::tallies(c, &ids, readers),
        super::mentions::attach(c, messages)
    )?;
    let mut parents: HashMap<Uuid, Parent> = parents.into_iter().collect();
    let mut reactions: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
    for t in tallies {
        reactions.entry(t.message_id).or_default().push(Reaction::from(t));
    }
    for m in messages {
        m.reply_to = parents.remove(&m.id).map(ReplyTo::from);
        m.reactions = reactions.remove(&m.id).unwrap_or_default();
    }
    Ok(())
}

/// How many of `limit` messages go before the one in the middle, given how many there are on
/// each side: half (with an even limit, the one more goes before), and what one side lacks
/// goes to the other.
fn window(limit: usize, before: usize, after: usize) -> (usize, usize) {
    let others = limit.saturating_sub(1);
    let take_before = before.min((limit / 2).max(others.saturating_sub(after)));
    let take_after = after.min(others - take_before);
    (take_before, take_after)
}

impl Chat {
    /// Up to `limit` messages around `seq`, oldest first, `seq` included (see [`window`]).
    pub async fn context(
        &self,
        actor: &Actor,
        room_id: Uuid,
        seq: i64,
        limit: Option<i64>,
    ) -> Result<Page<MessageView>> {
        let limit = MESSAGES_LIMIT.apply(limit)?;
        let conn = self.db.conn().await?;
        // As `history`: the access check and both sides are sent together.
        let (room, before, after) = tokio::join!(
            access::load(&*conn, actor, room_id, false),
            messages::history(&*conn, room_id, HistoryPage::Before(seq), limit - 1),
            messages::history(&*conn, room_id, HistoryPage::After(seq - 1), limit)
        );
        room?.require(Action::Read)?;
        let (before, after) = (before?, after?);
        if after.first().map(|m| m.seq) != Some(seq) {
            return Err(message_not_found(seq));
        }
        let (b, a) = window(limit as usize, before.len(), after.len() - 1);
        let mut items: Vec<MessageView> = before
            .into_iter()
            .take(b)
            .rev()
            .chain(after.into_iter().take(a + 1))
            .map(MessageView::from)
            .collect();
        decorate(&*conn, actor.user_id(), &mut items).await?;
        Ok(Page {
            items,
            next_cursor: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut_between_characters() {
        assert_eq!(quote("short"), ("short".to_owned(), false));
        let exact = "é".repeat(QUOTE_MAX);
        assert_eq!(quote(&exact), (exact.clone(), false));
        let (q, cut) = quote(&format!("{exact}🙂"));
        assert_eq!((q.chars().count(), cut), (QUOTE_MAX, true));
        assert_eq!(q, exact);
    }

    #[test]
    fn the_window_is_centred_and_filled_from_the_other_side() {
        assert_eq!(window(5, 10, 10), (2, 2));
        assert_eq!(window(4, 10, 10), (2, 1));
        assert_eq!(window(5, 0, 10), (0, 4));
        assert_eq!(window(5, 10, 0), (4, 0));
        assert_eq!(window(5, 1, 1), (1, 1));
        assert_eq!(window(1, 10, 10), (0, 0));
        assert_eq!(window(4, 10, 1), (2, 1));
        assert_eq!(window(6, 10, 1), (4, 1));
    }

    #[test]
    fn reply_to_must_be_a_positive_seq() {
        assert_eq!(parse_reply_to(Some(0)).unwrap_err().code(), "invalid_reply_to");
        assert_eq!(parse_reply_to(Some(-3)).unwrap_err().code(), "invalid_reply_to");
        assert_eq!(parse_reply_to(Some(7)).unwrap(), Some(7));
        assert_eq!(parse_reply_to(None).unwrap(), None);
    }
}
