//! The accounts service: registration, login, token refresh, logout, sessions and the
//! password-bound operations on one's own account.
//!
//! Rules that live here and nowhere else:
//! - wrong username and wrong password fail identically (`invalid_credentials`), at the same cost;
//! - a disabled account cannot log in, refresh, or use a token it already holds;
//! - refresh tokens rotate on every use, and presenting a rotated one revokes its session;
//! - changing the password revokes every other session.

use std::sync::Arc;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::password::PasswordHasher;
use super::tokens::{hash_refresh_token, new_refresh_token, TokenKeys};
use crate::config::Config;
use crate::db::{sessions, users, Db};
use crate::error::{Error, Result};
use crate::users::{DisplayName, Password, User, Username};

/// The service object; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) db: Db,
    pub(crate) hasher: Arc<PasswordHasher>,
    tokens: Arc<TokenKeys>,
    refresh_ttl: Duration,
}

/// Who is calling, for the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The peer's port (the admin API tells one host's connections apart by it).
    pub port: Option<u16>,
}

impl ClientInfo {
    /// The client's address, for the per-address limits.
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        self.ip.as_deref()?.parse().ok()
    }

    /// `ip:port` (`[ip]:port` for IPv6), or the ip alone.
    pub fn address(&self) -> Option<String> {
        let ip = self.ip.as_deref()?;
        Some(match self.port {
            Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
            Some(port) => format!("{ip}:{port}"),
            None => ip.to_owned(),
        })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    #[schema(required = true)]
    pub ip: Option<String>,
    pub current: bool,
}

const USER_AGENT_MAX: usize = 256;

/// When a refresh token issued at `now` expires. Config validation bounds the TTL; this is
/// the net under it, so a date overflow is an error rather than a panic.
fn refresh_expiry(now: OffsetDateTime, ttl: Duration) -> Result<OffsetDateTime> {
    now.checked_add(ttl)
        .ok_or_else(|| Error::Internal("auth.refresh_token_ttl_secs overflows the calendar".into()))
}

impl Accounts {
    pub fn new(db: Db, config: &Config, tokens: TokenKeys) -> Self {
        Self {
            db,
            hasher: Arc::new(PasswordHasher::new(
                config.auth.pbkdf2_iterations,
                config.hash_workers(),
            )),
            tokens: Arc::new(tokens),
            refresh_ttl: Duration::seconds(i64::try_from(config.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX / 2)),
        }
    }

    /// Creates an account. Used by registration and by `chatd user create`.
    pub async fn create_user(
        &self,
        username: &str,
        password: String,
        display_name: Option<&str>,
        is_admin: bool,
    ) -> Result<User> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = display_name
            .map(DisplayName::parse)
            .transpose()?
            .and_then(DisplayName::into_inner);
        // Hash before taking a connection: a pooled connection must never wait on a hash.
        let hash = self.hasher.hash(password.expose()).await?;
        let conn = self.db.conn().await?;
        let record = users::insert(&*conn, username.as_str(), display_name.as_deref(), &hash, is_admin)
            .await?
            .ok_or_else(|| Error::conflict("username_taken", format!("the username '{username}' is taken")))?;
        Ok(User::from(&record))
    }

    pub async fn register(
        &self,
        username: &str,
        password: String,
        display_name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(User, TokenPair)> {
        let user = self.create_user(username, password, display_name, false).await?;
        let pair = self.start_session(user.id, client).await?;
        Ok((user, pair))
    }

    pub async fn login(&self, username: &str, password: &str, client: &ClientInfo) -> Result<(User, TokenPair)> {
        let record = match Username::parse(username) {
            Ok(name) => users::by_username(&*self.db.conn().await?, name.as_str()).await?,
            Err(_) => None,
        };
        let verified = self
            .hasher
            .verify(password, record.as_ref().map(|r| r.password_hash.as_str()))
            .await?;
        let record = record.filter(|_| verified.ok).ok_or_else(Error::invalid_credentials)?;
        if record.disabled_at.is_some() {
            return Err(Error::forbidden("account_disabled", "this account is disabled"));
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash(password).await?;
            users::set_password_hash(&*self.db.conn().await?, record.id, &hash).await?;
            tracing::info!(user = %record.username, "password hash upgraded to the configured cost");
        }
        let pair = self.start_session(record.id, client).await?;
        Ok((User::from(&record), pair))
    }

    async fn start_session(&self, user_id: Uuid, client: &ClientInfo) -> Result<TokenPair> {
        let (refresh, hash) = new_refresh_token();
        let expires_at = refresh_expiry(OffsetDateTime::now_utc(), self.refresh_ttl)?;
        let user_agent = client.user_agent.as_deref().map(|ua| truncate(ua, USER_AGENT_MAX));
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let session_id = sessions::create(&tx, user_id, user_agent, client.ip.as_deref(), &hash, expires_at).await?;
        tx.commit().await?;
        self.pair(user_id, session_id, refresh)
    }

    fn pair(&self, user_id: Uuid, session_id: Uuid, refresh_token: String) -> Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.tokens.issue(user_id, session_id)?,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.tokens.access_ttl_secs(),
        })
    }

    /// Exchanges a refresh token for a new pair. The presented token is spent; presenting it
    /// again later revokes the whole session (it must have been stolen).
    pub async fn refresh(&self, refresh_token: &str) -> Result<(User, TokenPair)> {
        let hash = hash_refresh_token(refresh_token);
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        let state = sessions::lock_refresh(&tx, &hash)
            .await?
            .ok_or_else(|| Error::unauthorized("invalid_refresh_token", "the refresh token is not valid"))?;
        if state.rotated {
            sessions::revoke(&tx, state.session_id, None, "refresh_token_reused").await?;
            tx.commit().await?;
            tracing::warn!(session = %state.session_id, "a rotated refresh token was presented again; session revoked");
            return Err(Error::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session has been revoked",
            ));
        }
        if state.session_revoked {
            return Err(Error::unauthorized(
                "session_revoked",
                "the session has been revoked; log in again",
            ));
        }
        if state.expired {
            return Err(Error::unauthorized(
                "refresh_token_expired",
                "the refresh token has expired; log in again",
            ));
        }
        let record = users::by_id(&tx, state.user_id)
            .await?
            .ok_or_else(|| Error::unauthorized("session_revoked", "the account no longer exists"))?;
        if record.disabled_at.is_some() {
            return Err(Error::forbidden("account_disabled", "this account is disabled"));
        }
        let (new_token, new_hash) = new_refresh_token();
        let expires_at = refresh_expiry(OffsetDateTime::now_utc(), self.refresh_ttl)?;
        sessions::rotate(&tx, state.session_id, &hash, &new_hash, expires_at).await?;
        tx.commit().await?;
        Ok((User::from(&record), self.pair(record.id, state.session_id, new_token)?))
    }

    /// The public name of the signing secret (`TokenKeys::key_id`).
    pub fn signing_key_id(&self) -> &str {
        self.tokens.key_id()
    }

    /// An operator token for the admin API of any node sharing the signing secret.
    pub fn issue_operator(&self, ttl_secs: u64) -> Result<String> {
        self.tokens.issue_operator(ttl_secs)
    }

    /// Accepts an operator token (minted from the signing secret) for the admin API.
    pub fn verify_operator(&self, token: &str) -> Result<()> {
        self.tokens.verify_operator(token)
    }

    /// Resolves an access token to its caller, checking that its session is still live.
    pub async fn authenticate(&self, access_token: &str) -> Result<AuthUser> {
        let claims = self.tokens.verify(access_token)?;
        let conn = self.db.conn().await?;
        let state = sessions::state(&*conn, claims.sid, claims.sub)
            .await?
            .ok_or_else(|| Error::unauthorized("session_revoked", "the session no longer exists; log in again"))?;
        if state.revoked {
            return Err(Error::unauthorized(
                "session_revoked",
                "the session has been revoked; log in again",
            ));
        }
        if state.expired {
            return Err(Error::unauthorized(
                "session_expired",
                "the session has expired; log in again",
            ));
        }
        if state.disabled {
            return Err(Error::forbidden("account_disabled", "this account is disabled"));
        }
        if state.stale_last_used {
            sessions::touch(&*conn, claims.sid).await?;
        }
        Ok(AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
            username: state.username,
            is_admin: state.is_admin,
        })
    }

    pub async fn logout(&self, me: &AuthUser) -> Result<()> {
        sessions::revoke(&*self.db.conn().await?, me.session_id, Some(me.user_id), "logout").await?;
        Ok(())
    }

    pub async fn sessions(&self, me: &AuthUser) -> Result<Vec<SessionView>> {
        let rows = sessions::list_live(&*self.db.conn().await?, me.user_id).await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionView {
                current: s.id == me.session_id,
                id: s.id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect())
    }

    pub async fn revoke_session(&self, me: &AuthUser, session_id: Uuid) -> Result<()> {
        let revoked =
            sessions::revoke(&*self.db.conn().await?, session_id, Some(me.user_id), "revoked_by_user").await?;
        if revoked {
            Ok(())
        } else {
            Err(Error::not_found("session_not_found", "no such live session"))
        }
    }

    /// Changes my password after checking the current one; every other session is revoked.
    pub async fn change_password(&self, me: &AuthUser, current: &str, new: String) -> Result<()> {
        let new = Password::parse(new)?;
        self.check_own_password(me, current).await?;
        let hash = self.hasher.hash(new.expose()).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        users::set_password_hash(&tx, me.user_id, &hash).await?;
        sessions::revoke_all(&tx, me.user_id, Some(me.session_id), "password_changed").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes my account after checking my password. Sessions go with it.
    pub async fn delete_account(&self, me: &AuthUser, password: &str) -> Result<()> {
        self.check_own_password(me, password).await?;
        users::delete(&*self.db.conn().await?, me.user_id).await?;
        Ok(())
    }

    async fn check_own_password(&self, me: &AuthUser, password: &str) -> Result<()> {
        let record = users::by_id(&*self.db.conn().await?, me.user_id)
            .await?
            .ok_or_else(|| Error::unauthorized("session_revoked", "the account no longer exists"))?;
        if self.hasher.verify(password, Some(&record.password_hash)).await?.ok {
            Ok(())
        } else {
            Err(Error::forbidden(
                "wrong_password",
                "the current password is not correct",
            ))
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_expiry_past_the_calendar_is_an_error_not_a_panic() {
        let now = OffsetDateTime::now_utc();
        assert!(refresh_expiry(now, Duration::seconds(i64::MAX)).is_err());
        assert_eq!(
            refresh_expiry(now, Duration::seconds(60)).unwrap(),
            now + Duration::seconds(60)
        );
    }
}
