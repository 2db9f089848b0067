//! Reactions: a member of a room may react to any message of it that is not deleted with
//! Unicode emojis, once per emoji (adding one again, or removing one that is not there,
//! changes nothing). A message shows its reactions as one `{emoji, count, me}` per emoji, in
//! the order the emojis were first used on it; a deleted message shows none.
//!
//! Changes to one message's reactions are made one at a time (its row is locked), so the cap
//! on distinct emojis holds and the count each `reaction` event carries is exact, events
//! arriving in the order of the changes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::access::{self, Action};
use super::messages::message_not_found;
use super::{Actor, Chat};
use crate::bus::{self, Event};
use crate::db::reactions::{self, Tally};
use crate::error::{Error, Result};

/// The longest emoji accepted, in bytes of UTF-8 (a flag or a family with skin tones is 30 or so).
pub const EMOJI_MAX_BYTES: usize = 64;
/// Distinct emojis on one message at most.
pub const EMOJIS_PER_MESSAGE: i64 = 50;

/// One known Unicode emoji (with its skin tone, if any), in its fully qualified form: `❤` and
/// `❤️` are the same reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emoji(&'static str);

impl Emoji {
    pub fn parse(input: &str) -> Result<Self> {
        (input.len() <= EMOJI_MAX_BYTES)
            .then(|| emojis::get(input))
            .flatten()
            .map(|e| e.as_str())
            .filter(|e| e.len() <= EMOJI_MAX_BYTES)
            .map(Self)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid_emoji",
                    format!("a reaction is one Unicode emoji (at most {EMOJI_MAX_BYTES} bytes)"),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Reaction {
    pub emoji: String,
    /// How many reacted with it.
    pub count: i64,
    /// Whether the reader is one of them.
    pub me: bool,
}

impl From<Tally> for Reaction {
    fn from(t: Tally) -> Self {
        Self {
            emoji: t.emoji,
            count: t.count,
            me: t.mine,
        }
    }
}

/// A message's reactions, as changing them answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MessageReactions {
    pub room_id: Uuid,
    pub seq: i64,
    pub reactions: Vec<Reaction>,
}

impl Chat {
    /// Adds (`add`) or removes the actor's reaction `emoji` to the message `seq`; returns the
    /// message's reactions. Whoever may post in the room may react.
    pub async fn react(
        &self,
        actor: &Actor,
        room_id: Uuid,
        seq: i64,
        emoji: &str,
        add: bool,
    ) -> Result<MessageReactions> {
        let Some(me) = actor.user_id() else {
            return Err(Error::invalid("invalid_actor", "reactions belong to users"));
        };
        let emoji = Emoji::parse(emoji)?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let room = access::load(&tx, actor, room_id, false).await?;
        room.require(Action::Post)?;
        room.writable()?;
        let (message, deleted_at) = reactions::lock_message(&tx, room_id, seq)
            .await?
            .ok_or_else(|| message_not_found(seq))?;
        if deleted_at.is_some() {
            return Err(Error::conflict("message_deleted", "the message was deleted"));
        }
        let changed = if add {
            let (distinct, with_it) = reactions::counts(&tx, message, emoji.as_str()).await?;
            if with_it == 0 && distinct >= EMOJIS_PER_MESSAGE {
                return Err(Error::conflict(
                    "too_many_reactions",
                    format!("a message has at most {EMOJIS_PER_MESSAGE} different reactions"),
                ));
            }
            reactions::add(&tx, message, emoji.as_str(), me).await?
        } else {
            reactions::remove(&tx, message, emoji.as_str(), me).await?
        };
        let tallies = reactions::tallies(&tx, &[message], &[Some(me)]).await?;
        if changed {
            // The message's tallies, read for the answer, hold the emoji's new count.
            let count = tallies
                .iter()
                .find(|t| t.emoji == emoji.as_str())
                .map_or(0, |t| t.count);
            let event = Event::Reaction {
                room_id,
                seq,
                emoji: emoji.as_str().to_owned(),
                username: actor.username().to_owned(),
                added: add,
                count,
            };
            bus::notify(&tx, &event).await?;
        }
        tx.commit().await?;
        Ok(MessageReactions {
            room_id,
            seq,
            reactions: tallies.into_iter().map(Reaction::from).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emojis_are_known_single_and_fully_qualified() {
        assert_eq!(Emoji::parse("👍").unwrap().as_str(), "👍");
        assert_eq!(Emoji::parse("👍🏽").unwrap().as_str(), "👍🏽");
        assert_eq!(Emoji::parse("\u{2764}").unwrap().as_str(), "\u{2764}\u{fe0f}");
        assert!(Emoji::parse("👨‍👩‍👧‍👦").is_ok());
        assert!(Emoji::parse("🇫🇷").is_ok());
        for bad in ["", "a", "ok", "👍👍", "👍 ", ":+1:", &"👍".repeat(20)] {
            assert_eq!(Emoji::parse(bad).unwrap_err().code(), "invalid_emoji", "{bad:?}");
        }
    }
}
