//! The `sessions` and `refresh_tokens` tables.

use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::bus::{self, Event};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl From<&Row> for SessionRecord {
    fn from(r: &Row) -> Self {
        Self {
            id: r.get(0),
            user_id: r.get(1),
            user_agent: r.get(2),
            ip: r.get(3),
            created_at: r.get(4),
            last_used_at: r.get(5),
            expires_at: r.get(6),
        }
    }
}

/// Creates a session and its first refresh token. Call inside a transaction.
pub async fn create(
    c: &impl GenericClient,
    user_id: Uuid,
    user_agent: Option<&str>,
    ip: Option<&str>,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<Uuid, tokio_postgres::Error> {
    let id = Uuid::new_v4();
    c.execute(
        "INSERT INTO sessions (id, user_id, user_agent, ip, expires_at) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &user_id, &user_agent, &ip, &expires_at],
    )
    .await?;
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[&token_hash, &id, &expires_at],
    )
    .await?;
    Ok(id)
}

/// What an access token's session says about its bearer right now.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub username: String,
    pub is_admin: bool,
    pub revoked: bool,
    pub expired: bool,
    pub disabled: bool,
    pub stale_last_used: bool,
}

pub async fn state(
    c: &impl GenericClient,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<Option<SessionState>, tokio_postgres::Error> {
    let row = c
        .query_typed_opt(
            "SELECT u.username, u.is_admin, s.revoked_at IS NOT NULL, s.expires_at < now(), \
                    u.disabled_at IS NOT NULL, s.last_used_at < now() - interval '60 seconds' \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2",
            &[(&session_id, Type::UUID), (&user_id, Type::UUID)],
        )
        .await?;
    Ok(row.map(|r| SessionState {
        username: r.get(0),
        is_admin: r.get(1),
        revoked: r.get(2),
        expired: r.get(3),
        disabled: r.get(4),
        stale_last_used: r.get(5),
    }))
}

/// Records that the session was used (called at most about once a minute per session).
pub async fn touch(c: &impl GenericClient, session_id: Uuid) -> Result<(), tokio_postgres::Error> {
    c.execute("UPDATE sessions SET last_used_at = now() WHERE id = $1", &[&session_id])
        .await?;
    Ok(())
}

/// A refresh token found by its hash, locked with its session for the rest of the transaction.
#[derive(Debug, Clone)]
pub struct RefreshState {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub rotated: bool,
    pub expired: bool,
    pub session_revoked: bool,
}

pub async fn lock_refresh(
    c: &impl GenericClient,
    token_hash: &[u8],
) -> Result<Option<RefreshState>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT s.id, s.user_id, rt.rotated_at IS NOT NULL, rt.expires_at < now(), s.revoked_at IS NOT NULL \
             FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
             WHERE rt.token_hash = $1 FOR UPDATE OF rt, s",
            &[&token_hash],
        )
        .await?;
    Ok(row.map(|r| RefreshState {
        session_id: r.get(0),
        user_id: r.get(1),
        rotated: r.get(2),
        expired: r.get(3),
        session_revoked: r.get(4),
    }))
}

/// Marks `old` rotated and stores `new` for the same session, extending the session.
pub async fn rotate(
    c: &impl GenericClient,
    session_id: Uuid,
    old: &[u8],
    new: &[u8],
    expires_at: OffsetDateTime,
) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
        &[&old],
    )
    .await?;
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[&new, &session_id, &expires_at],
    )
    .await?;
    c.execute(
        "UPDATE sessions SET last_used_at = now(), expires_at = $2 WHERE id = $1",
        &[&session_id, &expires_at],
    )
    .await?;
    Ok(())
}

/// Revokes one session (of `user_id`, when given). Returns whether a live session was revoked.
pub async fn revoke(
    c: &impl GenericClient,
    session_id: Uuid,
    user_id: Option<Uuid>,
    reason: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 \
             WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND revoked_at IS NULL",
            &[&session_id, &user_id, &reason],
        )
        .await?;
    if n == 1 {
        // Its sockets close when this commits.
        let event = Event::SessionEnded {
            session_id,
            reason: reason.to_string(),
        };
        bus::notify(c, &event).await?;
    }
    Ok(n == 1)
}

/// Revokes every live session of a user except `keep`. Returns how many.
pub async fn revoke_all(
    c: &impl GenericClient,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<u64, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 \
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)",
            &[&user_id, &keep, &reason],
        )
        .await?;
    // Sent even when no session was live: a socket may outlive its session's expiry.
    let event = Event::UserSessionsEnded {
        user_id,
        keep,
        reason: reason.to_string(),
    };
    bus::notify(c, &event).await?;
    Ok(n)
}

/// A user's live (not revoked, not expired) sessions, newest use first.
pub async fn list_live(c: &impl GenericClient, user_id: Uuid) -> Result<Vec<SessionRecord>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT id, user_id, user_agent, ip, created_at, last_used_at, expires_at FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() \
             ORDER BY last_used_at DESC, id LIMIT 1000",
            &[&user_id],
        )
        .await?;
    Ok(rows.iter().map(SessionRecord::from).collect())
}

/// Deletes sessions that ended more than a week ago (their tokens go with them).
pub async fn purge_ended(c: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "DELETE FROM sessions WHERE expires_at < now() - interval '7 days' \
            OR revoked_at < now() - interval '7 days'",
        &[],
    )
    .await
}

/// Of the sessions given, those that have ended: revoked, expired, gone with their account, or
/// belonging to a disabled account. Each with why, and whether the account is disabled.
pub async fn ended_among(
    c: &impl GenericClient,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, bool)>, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT p.id, \
                    CASE WHEN s.id IS NULL THEN 'session_revoked' \
                         WHEN u.disabled_at IS NOT NULL THEN 'account_disabled' \
                         WHEN s.revoked_at IS NOT NULL THEN coalesce(s.revoked_reason, 'session_revoked') \
                         ELSE 'session_expired' END, \
                    coalesce(u.disabled_at IS NOT NULL, false) \
             FROM unnest($1::uuid[]) AS p(id) \
             LEFT JOIN sessions s ON s.id = p.id \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE s.id IS NULL OR s.revoked_at IS NOT NULL OR s.expires_at < now() OR u.disabled_at IS NOT NULL",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
