//! Chat: rooms, membership and moderation, direct messages, and the message service.
//!
//! The HTTP API and `chatd room` call these functions; every rule about who may do what lives
//! in `access` and nowhere else. Private and direct rooms are invisible to non-members: every
//! operation answers `room_not_found` for them, exactly as for a room that does not exist.
//! A message is stored with its room-wide `seq` in one transaction (see `db::messages`).

mod access;
pub mod audit;
mod ingest;
mod invites;
mod members;
pub mod mentions;
mod messages;
mod reactions;
mod replies;
mod rooms;
mod search;
pub mod types;

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

pub use ingest::{Posted, Receipt};
pub use invites::{InviteState, InviteTerms, InviteView, INVITES_LIMIT};
pub use members::{BanView, MemberView};
pub use mentions::Mention;
pub use messages::{HistoryPage, MessageView, ReadState};
pub use reactions::{Emoji, MessageReactions, Reaction};
pub use replies::{decorate, ReplyTo};
pub use rooms::{RoomQuery, RoomUpdate, RoomView};
pub use search::{SearchHit, SearchQuery, SearchRoom, SEARCH_LIMIT};
pub use types::{Role, Visibility};

use crate::auth::AuthUser;
use crate::bus::Bus;
use crate::config::LimitsConfig;
use crate::db::users::{self, UserRecord};
use crate::db::Db;
use crate::error::{Error, Result};
pub use crate::page::{Limit, Page};
use crate::users::Username;

/// The chat service. Cheap to clone.
#[derive(Clone)]
pub struct Chat {
    db: Db,
    bus: Bus,
    /// Messages per user per second (`limits.messages_per_sec`); `None`: unlimited.
    send_limit: Option<Arc<DefaultKeyedRateLimiter<Uuid>>>,
    /// The writers that store new messages in batches.
    ingest: Arc<ingest::Ingest>,
}

/// Who is acting: a signed-in user, or the operator at the command line (who may do anything
/// a room's owner may, in any room, and sees every room).
#[derive(Debug, Clone)]
pub enum Actor {
    User { id: Uuid, username: String },
    Operator,
}

impl From<&AuthUser> for Actor {
    fn from(u: &AuthUser) -> Self {
        Self::User {
            id: u.user_id,
            username: u.username.clone(),
        }
    }
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Operator => None,
        }
    }

    /// The acting user's name, for events; empty for the operator, who never joins or leaves.
    pub fn username(&self) -> &str {
        match self {
            Self::User { username, .. } => username,
            Self::Operator => "",
        }
    }
}

pub const ROOMS_LIMIT: Limit = Limit { default: 50, max: 100 };
pub const MEMBERS_LIMIT: Limit = Limit { default: 50, max: 200 };
pub const MESSAGES_LIMIT: Limit = Limit { default: 50, max: 200 };

/// The answer for a room that does not exist, or that the caller may not see.
pub(crate) fn room_not_found() -> Error {
    Error::not_found("room_not_found", "no such room")
}

fn user_not_found(name: &str) -> Error {
    Error::not_found("user_not_found", format!("no user named '{name}'"))
}

impl Chat {
    pub fn new(db: Db, bus: Bus, limits: &LimitsConfig) -> Self {
        let send_limit = NonZeroU32::new(limits.messages_per_sec).map(|rate| {
            let burst = NonZeroU32::new(limits.message_burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
        });
        Self {
            db,
            bus,
            send_limit,
            ingest: Arc::default(),
        }
    }

    /// Charges one message to `user`'s send rate, or says when they may send again.
    fn charge_send(&self, user: Uuid) -> Result<()> {
        let Some(limiter) = &self.send_limit else {
            return Ok(());
        };
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            Error::rate_limited("rate_limited", "too many messages; slow down", wait)
        })
    }

    /// Forgets the send rates of users who have not sent lately (memory stays bounded).
    pub fn prune_limits(&self) {
        if let Some(limiter) = &self.send_limit {
            limiter.retain_recent();
        }
    }

    /// An active account by name (disabled accounts cannot be added, invited or messaged). A
    /// user is not told that an account they cannot reach exists but is disabled; the operator,
    /// who can enable it, is.
    async fn active_user(
        &self,
        c: &impl tokio_postgres::GenericClient,
        actor: &Actor,
        name: &str,
    ) -> Result<UserRecord> {
        let user = self.any_user(c, name).await?;
        match (user.disabled_at, actor) {
            (None, _) => Ok(user),
            (Some(_), Actor::Operator) => Err(Error::conflict(
                "user_disabled",
                format!(
                    "the account '{}' is disabled: enable it first (chatd user enable {})",
                    user.username, user.username
                ),
            )),
            (Some(_), Actor::User { .. }) => Err(user_not_found(name)),
        }
    }

    async fn any_user(&self, c: &impl tokio_postgres::GenericClient, name: &str) -> Result<UserRecord> {
        let parsed = Username::parse(name).map_err(|_| user_not_found(name))?;
        users::by_username(c, parsed.as_str())
            .await?
            .ok_or_else(|| user_not_found(name))
    }
}
