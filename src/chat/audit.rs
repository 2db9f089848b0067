//! Reading the audit log: a room's own (its owner and admins), and the whole of it (the
//! operator and server administrators, through the admin API, `chatd audit` and `chatd tui`).
//!
//! Entries are written by the services that make each change (`db::audit::record`, inside
//! their transaction); here they are only listed, newest first, by the entry's id — which
//! is also the cursor, so a page boundary never skips or repeats an entry written meanwhile.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, Action};
use super::{Actor, Chat, Limit, Page};
use crate::db::audit::{self, AuditAction, AuditRecord, Filter};
use crate::error::{Error, Result};
use crate::page;
use crate::users::Username;

/// `limit` of the audit listings.
pub const AUDIT_LIMIT: Limit = Limit { default: 50, max: 200 };

/// One recorded action, as an administrator sees it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub action: AuditAction,
    /// Who did it, by their name at the time; `operator` for the operator.
    pub actor: String,
    /// To whom, by their name at the time; `null` when the action had no user as its target.
    #[schema(required = true)]
    pub target: Option<String>,
    #[schema(required = true)]
    pub room_id: Option<Uuid>,
    /// The room's name at the time (`direct` for a direct room).
    #[schema(required = true)]
    pub room_name: Option<String>,
    #[schema(required = true)]
    pub reason: Option<String>,
    /// What changed, when there is more to say (a role's old and new value, a room's changed
    /// fields, a deleted message's seq…).
    #[schema(required = true, value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl TryFrom<AuditRecord> for AuditEntry {
    type Error = Error;
    fn try_from(r: AuditRecord) -> Result<Self> {
        Ok(Self {
            action: r
                .action
                .parse()
                .map_err(|_| Error::Internal(format!("unknown audit action '{}'", r.action)))?,
            id: r.id,
            at: r.at,
            actor: r.actor_name,
            target: r.target_name,
            room_id: r.room_id,
            room_name: r.room_name,
            reason: r.reason,
            details: r.details,
        })
    }
}

/// The filters of a listing as given (query parameters, command-line flags); `parse` checks them.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// A room's id, or its name as recorded.
    pub room: Option<String>,
    /// A user's name: entries they did or that were done to them (`operator`: the operator's).
    pub user: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 times, inclusive.
    pub since: Option<String>,
    pub until: Option<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("invalid_query", message)
}

impl AuditQuery {
    pub fn parse(&self) -> Result<Filter> {
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut filter = Filter::default();
        if let Some(room) = blank(&self.room) {
            match Uuid::parse_str(&room) {
                Ok(id) => filter.room_id = Some(id),
                Err(_) if room.chars().count() <= page::QUERY_MAX && !room.chars().any(char::is_control) => {
                    filter.room_name = Some(room)
                }
                Err(_) => return Err(invalid("room must be a room's id or name")),
            }
        }
        if let Some(user) = blank(&self.user) {
            let name = Username::parse(&user).map_err(|_| invalid(format!("user: '{user}' is not a username")))?;
            filter.user = Some(name.as_str().to_owned());
        }
        if let Some(action) = blank(&self.action) {
            filter.action = Some(action.parse().map_err(|_| {
                let all: Vec<&str> = ALL_ACTIONS.iter().map(|a| a.as_str()).collect();
                invalid(format!("action: '{action}' is not one of {}", all.join(", ")))
            })?);
        }
        let time = |name: &str, v: Option<String>| {
            v.map(|t| {
                OffsetDateTime::parse(&t, &Rfc3339)
                    .map_err(|_| invalid(format!("{name} must be an RFC 3339 time, like 2026-01-31T12:00:00Z")))
            })
            .transpose()
        };
        filter.since = time("since", blank(&self.since))?;
        filter.until = time("until", blank(&self.until))?;
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if since > until {
                return Err(invalid("since must not be after until"));
            }
        }
        Ok(filter)
    }
}

/// Every action, for messages that list them.
pub const ALL_ACTIONS: &[AuditAction] = <AuditAction as strum::VariantArray>::VARIANTS;

/// The entry id inside a `before` cursor.
fn decode_before(cursor: &str) -> Result<i64> {
    page::decode(cursor)?
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(page::invalid_cursor)
}

impl Chat {
    /// A room's audit log (its owner and admins; the operator), newest first.
    pub async fn room_audit(
        &self,
        actor: &Actor,
        room_id: Uuid,
        action: Option<&str>,
        before: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<AuditEntry>> {
        let limit = AUDIT_LIMIT.apply(limit)?;
        let mut filter = AuditQuery {
            action: action.map(str::to_owned),
            ..AuditQuery::default()
        }
        .parse()?;
        let before = before.map(decode_before).transpose()?;
        let conn = self.db.conn().await?;
        access::load(&*conn, actor, room_id, false)
            .await?
            .require(Action::Moderate)?;
        filter.room_id = Some(room_id);
        let rows = audit::list(&*conn, &filter, before, limit + 1).await?;
        Page::from_rows(rows, limit, |r| r.id.to_string(), AuditEntry::try_from)
    }

    /// The whole audit log, filtered, newest first: for the operator and server administrators
    /// only (the caller checks). `limit` is the caller's, already bounded.
    pub async fn audit_log(&self, filter: &Filter, before: Option<&str>, limit: i64) -> Result<Page<AuditEntry>> {
        let before = before.map(decode_before).transpose()?;
        let rows = audit::list(&*self.db.conn().await?, filter, before, limit + 1).await?;
        Page::from_rows(rows, limit, |r| r.id.to_string(), AuditEntry::try_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_from_its_name() {
        for &a in ALL_ACTIONS {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
            // The stored name is the wire name.
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
        }
        assert_eq!(ALL_ACTIONS.len(), 19);
        assert!("kicked".parse::<AuditAction>().is_err());
    }

    #[test]
    fn filters_are_checked() {
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q.parse()
        };
        assert_eq!(
            q(|q| q.action = Some("nope".into())).unwrap_err().code(),
            "invalid_query"
        );
        assert!(q(|q| q.since = Some("yesterday".into())).is_err());
        assert!(q(|q| q.user = Some("a b".into())).is_err());
        assert!(q(|q| {
            q.since = Some("2026-02-01T00:00:00Z".into());
            q.until = Some("2026-01-01T00:00:00Z".into());
        })
        .is_err());
        let f = q(|q| {
            q.room = Some("Ops".into());
            q.user = Some("Alice".into());
            q.action = Some(" member_kicked ".into());
        })
        .unwrap();
        assert_eq!(f.room_name.as_deref(), Some("Ops"));
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.action, Some(AuditAction::MemberKicked));
        assert_eq!(decode_before(&page::encode("0")).unwrap_err().code(), "invalid_cursor");
    }
}
