//! Invite links: a room's owner and admins hand out codes; whoever holds one may join the room
//! as a member, private rooms included, until it expires, is used up or is revoked.
//!
//! A code is a bearer secret: 128 bits from the OS generator, base64url (22 characters). It is
//! stored as it is, so the owner and admins can list and share it again; the audit log and
//! the logs only ever see its first four characters. Every invite expires (at most
//! `INVITE_TTL_MAX_SECS` after it is made) and may be limited to a number of uses, counted
//! in one conditional `UPDATE` (`db::invites::consume`) so concurrent accepts never exceed it.
//! Accepting takes the room's lock like `join`, and announces the new member the same way.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, Access, Action};
use super::members::joined;
use super::rooms::room_view;
use super::{Actor, Chat, Page, Role, RoomView};
use crate::db::audit::{self, AuditAction, Entry};
use crate::db::invites::{self, InviteRecord};
use crate::db::rooms;
use crate::error::{Error, Result};
use crate::page::{self, Limit};

/// Shortest and longest lifetime of an invite, and the lifetime when none is asked for.
pub const INVITE_TTL_MIN_SECS: i64 = 60;
pub const INVITE_TTL_MAX_SECS: i64 = 30 * 24 * 3600;
pub const INVITE_TTL_DEFAULT_SECS: i64 = 7 * 24 * 3600;
/// The largest use limit; no limit (`null`) is allowed too.
pub const INVITE_USES_MAX: i64 = 10_000;
pub const INVITES_LIMIT: Limit = Limit { default: 50, max: 200 };

/// Random bytes in a code: 128 bits, 22 base64url characters.
const CODE_BYTES: usize = 16;
const CODE_LEN: usize = 22;

/// Where an invite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteState {
    Active,
    Expired,
    Exhausted,
    Revoked,
}

/// An invite as its room's owner and admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InviteView {
    /// The secret to hand out: `POST /api/v1/invites/{code}/accept`.
    pub code: String,
    pub room_id: Uuid,
    /// Who made it; `null` for the operator or a deleted account.
    #[schema(required = true)]
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// `null`: unlimited.
    #[schema(required = true)]
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked: bool,
    pub state: InviteState,
}

impl From<InviteRecord> for InviteView {
    fn from(r: InviteRecord) -> Self {
        let state = state_of(&r);
        Self {
            code: r.code,
            room_id: r.room_id,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            max_uses: r.max_uses,
            uses: r.uses,
            revoked: r.revoked_at.is_some(),
            state,
        }
    }
}

fn state_of(r: &InviteRecord) -> InviteState {
    if r.revoked_at.is_some() {
        InviteState::Revoked
    } else if r.expired {
        InviteState::Expired
    } else if r.max_uses.is_some_and(|max| r.uses >= max) {
        InviteState::Exhausted
    } else {
        InviteState::Active
    }
}

/// What an invite allows: a lifetime and an optional use limit, within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteTerms {
    ttl_secs: i64,
    max_uses: Option<i32>,
}

impl InviteTerms {
    /// `expires_in_secs` defaults to `INVITE_TTL_DEFAULT_SECS`; `max_uses` `None` is unlimited.
    pub fn parse(expires_in_secs: Option<i64>, max_uses: Option<i64>) -> Result<Self> {
        let ttl_secs = expires_in_secs.unwrap_or(INVITE_TTL_DEFAULT_SECS);
        if !(INVITE_TTL_MIN_SECS..=INVITE_TTL_MAX_SECS).contains(&ttl_secs) {
            return Err(Error::invalid(
                "invalid_expiry",
                format!("expires_in_secs must be from {INVITE_TTL_MIN_SECS} to {INVITE_TTL_MAX_SECS} (30 days)"),
            ));
        }
        let max_uses = match max_uses {
            None => None,
            Some(n @ 1..=INVITE_USES_MAX) => i32::try_from(n).ok(),
            Some(_) => {
                return Err(Error::invalid(
                    "invalid_max_uses",
                    format!("max_uses must be from 1 to {INVITE_USES_MAX}, or null for no limit"),
                ))
            }
        };
        Ok(Self { ttl_secs, max_uses })
    }
}

/// A code as a client gave it: something this server could have made, or no invite at all.
fn parse_code(code: &str) -> Result<&str> {
    let well_formed = code.len() == CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(code).ok_or_else(invite_not_found)
}

fn new_code() -> String {
    let mut bytes = [0u8; CODE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the audit log keeps of a code: enough to tell invites apart, too little to use one.
fn code_prefix(code: &str) -> &str {
    code.get(..4).unwrap_or(code)
}

fn invite_not_found() -> Error {
    Error::not_found("invite_not_found", "no such invite")
}

/// Why an invite that exists admits nobody any more.
fn unusable(r: &InviteRecord) -> Error {
    match state_of(r) {
        InviteState::Revoked => Error::gone("invite_revoked", "this invite was revoked"),
        InviteState::Expired => Error::gone("invite_expired", "this invite has expired"),
        // `Active` only if it changed between the two reads: it was used up meanwhile.
        InviteState::Exhausted | InviteState::Active => {
            Error::gone("invite_exhausted", "this invite has been used as often as it allows")
        }
    }
}

/// The cursor over invites: the last one's creation time (ns) and code.
fn cursor_key(r: &InviteRecord) -> String {
    format!("{}:{}", r.created_at.unix_timestamp_nanos(), r.code)
}

fn decode_cursor(cursor: &str) -> Result<(OffsetDateTime, String)> {
    let text = page::decode(cursor)?;
    let (nanos, code) = text.split_once(':').ok_or_else(page::invalid_cursor)?;
    let at = nanos
        .parse::<i128>()
        .ok()
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .ok_or_else(page::invalid_cursor)?;
    let code = parse_code(code).map_err(|_| page::invalid_cursor())?;
    Ok((at, code.to_owned()))
}

impl Chat {
    /// Makes an invite to a public or private room (owner and admins).
    pub async fn create_invite(&self, actor: &Actor, room_id: Uuid, terms: InviteTerms) -> Result<InviteView> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        let code = new_code();
        let invite = invites::insert(&tx, &code, room_id, actor.user_id(), terms.ttl_secs, terms.max_uses).await?;
        let details = json!({
            "code_prefix": code_prefix(&code),
            "expires_at": invite.expires_at.format(&Rfc3339).ok(),
            "max_uses": invite.max_uses,
        });
        audit::record(
            &tx,
            AuditAction::InviteCreated,
            &Entry {
                actor: actor.user_id(),
                room: Some(room_id),
                details: Some(details),
                ..Entry::default()
            },
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(%room_id, code_prefix = code_prefix(&code), "invite created");
        Ok(InviteView::from(invite))
    }

    /// A room's invites, newest first, whatever their state (owner and admins).
    pub async fn invites(
        &self,
        actor: &Actor,
        room_id: Uuid,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<InviteView>> {
        let limit = INVITES_LIMIT.apply(limit)?;
        let after = cursor.map(decode_cursor).transpose()?;
        let conn = self.db.conn().await?;
        access::load(&*conn, actor, room_id, false)
            .await?
            .require(Action::Moderate)?;
        let after = after.as_ref().map(|(at, code)| (*at, code.as_str()));
        let rows = invites::list(&*conn, room_id, after, limit + 1).await?;
        Page::from_rows(rows, limit, cursor_key, |r| Ok(InviteView::from(r)))
    }

    /// Revokes an invite (owner and admins); revoking it again changes nothing.
    pub async fn revoke_invite(&self, actor: &Actor, room_id: Uuid, code: &str) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        access::for_change(&tx, actor, room_id, Action::Moderate).await?;
        let code = parse_code(code)?;
        let revoked = invites::revoke(&tx, room_id, code, actor.user_id())
            .await?
            .ok_or_else(invite_not_found)?;
        if revoked {
            audit::record(
                &tx,
                AuditAction::InviteRevoked,
                &Entry {
                    actor: actor.user_id(),
                    room: Some(room_id),
                    details: Some(json!({ "code_prefix": code_prefix(code) })),
                    ..Entry::default()
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Joins the caller to the invite's room as a member, counting one use. A member already
    /// gets the room without using the invite; a banned user is refused without using it.
    pub async fn accept_invite(&self, actor: &Actor, code: &str) -> Result<RoomView> {
        let Some(me) = actor.user_id() else {
            return Err(Error::invalid("invalid_actor", "only users accept invites"));
        };
        let code = parse_code(code)?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let invite = invites::by_code(&tx, code).await?.ok_or_else(invite_not_found)?;
        let room_id = invite.room_id;
        // The room's lock, as for `join`: membership changes to one room are serialized. The
        // standing is read after it (see `access::load`). The invite stands in for the
        // visibility check, so the row is judged here rather than by `access::judge`.
        rooms::lock(&tx, room_id).await?;
        let row = rooms::access(&tx, room_id, Some(me))
            .await?
            .ok_or_else(invite_not_found)?;
        let room = Access {
            visibility: row.room.visibility.parse()?,
            role: row.role.as_deref().map(str::parse).transpose()?,
            banned: row.banned,
            operator: false,
            room: row.room,
        };
        room.require(Action::Read)?;
        if room.role.is_none() {
            room.not_direct()?;
            room.writable()?;
            if !invites::consume(&tx, code).await? {
                let now = invites::by_code(&tx, code).await?.ok_or_else(invite_not_found)?;
                return Err(unusable(&now));
            }
            rooms::add_member(&tx, room_id, me, Role::Member.as_str()).await?;
            joined(&tx, room_id, me, actor.username(), Role::Member).await?;
        }
        tx.commit().await?;
        room_view(&*conn, actor, room_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_22_url_safe_characters_and_differ() {
        let (a, b) = (new_code(), new_code());
        assert_eq!(a.len(), CODE_LEN);
        assert_ne!(a, b);
        assert_eq!(parse_code(&a).unwrap(), a);
        for bad in [
            "",
            "short",
            &"a".repeat(23),
            "aaaaaaaaaaaaaaaaaaaa+/",
            "aaaaaaaaaaaaaaaaaaaaa%",
        ] {
            assert_eq!(parse_code(bad).unwrap_err().code(), "invite_not_found", "{bad:?}");
        }
        assert_eq!(code_prefix(&a), &a[..4]);
    }

    #[test]
    fn terms_are_bounded() {
        let t = InviteTerms::parse(None, None).unwrap();
        assert_eq!((t.ttl_secs, t.max_uses), (INVITE_TTL_DEFAULT_SECS, None));
        assert!(InviteTerms::parse(Some(60), Some(1)).is_ok());
        assert!(InviteTerms::parse(Some(INVITE_TTL_MAX_SECS), Some(INVITE_USES_MAX)).is_ok());
        for ttl in [-1, 0, 59, INVITE_TTL_MAX_SECS + 1, i64::MAX] {
            assert_eq!(
                InviteTerms::parse(Some(ttl), None).unwrap_err().code(),
                "invalid_expiry"
            );
        }
        for uses in [-1, 0, INVITE_USES_MAX + 1, i64::MAX] {
            assert_eq!(
                InviteTerms::parse(None, Some(uses)).unwrap_err().code(),
                "invalid_max_uses"
            );
        }
    }
}
