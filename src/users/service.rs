//! Profile reads and edits, user search, and the operator's administration of accounts
//! (`chatd user …`). Administration that ends access (disable, password reset, delete)
//! revokes the user's sessions in the same transaction. Each of these is recorded in the
//! audit log in the transaction that makes it (a change to what is already so is not).

use uuid::Uuid;

use super::{AvatarUrl, Bio, DisplayName, Password, PublicProfile, User, Username};
use crate::auth::{Accounts, AuthUser};
use crate::db::audit::{self, AuditAction, Entry};
use crate::db::users::{ProfileChange, UserRecord};
use crate::db::{sessions, users};
use crate::error::{Error, Result};
use crate::page::{self, Limit, Page};

/// `PATCH /users/me`: absent fields stay, `null` (or "") clears, a value sets.
#[derive(Debug, Default, Clone)]
pub struct ProfileUpdate {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

/// `GET /users?q=`: 20 by default, at most 100.
pub const SEARCH_LIMIT: Limit = Limit { default: 20, max: 100 };

fn user_not_found(name: &str) -> Error {
    Error::not_found("user_not_found", format!("no user named '{name}'"))
}

impl Accounts {
    pub async fn me(&self, me: &AuthUser) -> Result<User> {
        let record = users::by_id(&*self.db.conn().await?, me.user_id)
            .await?
            .ok_or_else(|| Error::unauthorized("session_revoked", "the account no longer exists"))?;
        Ok(User::from(&record))
    }

    pub async fn update_profile(&self, me: &AuthUser, update: ProfileUpdate) -> Result<User> {
        fn parse<T>(
            field: Option<Option<String>>,
            parse: impl Fn(&str) -> Result<T>,
            inner: impl Fn(T) -> Option<String>,
        ) -> Result<Option<Option<String>>> {
            field
                .map(|v| v.map(|s| parse(&s).map(&inner)).transpose().map(Option::flatten))
                .transpose()
        }
        let change = ProfileChange {
            display_name: parse(update.display_name, DisplayName::parse, DisplayName::into_inner)?,
            bio: parse(update.bio, Bio::parse, Bio::into_inner)?,
            avatar_url: parse(update.avatar_url, AvatarUrl::parse, AvatarUrl::into_inner)?,
        };
        let record = users::update_profile(&*self.db.conn().await?, me.user_id, &change)
            .await?
            .ok_or_else(|| Error::unauthorized("session_revoked", "the account no longer exists"))?;
        Ok(User::from(&record))
    }

    /// Another user's public profile. Disabled accounts are not shown.
    pub async fn public_profile(&self, username: &str) -> Result<PublicProfile> {
        // Only "no such user" is a 404; a database failure must stay a 503/500.
        let record = self.find(username).await?;
        if record.disabled_at.is_some() {
            return Err(user_not_found(username));
        }
        Ok(PublicProfile::from(&record))
    }

    /// Users whose name starts with (or display name contains) `query`, by username.
    pub async fn search_users(
        &self,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<PublicProfile>> {
        let limit = SEARCH_LIMIT.apply(limit)?;
        let query = page::search_query(query)?;
        let after = cursor.map(page::decode_username).transpose()?;
        let rows = users::search(&*self.db.conn().await?, query, after.as_deref(), limit + 1, false).await?;
        Page::from_rows(rows, limit, |r| r.username.clone(), |r| Ok(PublicProfile::from(&r)))
    }

    // ----- operator administration (`chatd user …`) -----

    async fn find(&self, username: &str) -> Result<UserRecord> {
        let name = Username::parse(username).map_err(|_| user_not_found(username))?;
        users::by_username(&*self.db.conn().await?, name.as_str())
            .await?
            .ok_or_else(|| user_not_found(username))
    }

    pub async fn user(&self, username: &str) -> Result<User> {
        Ok(User::from(&self.find(username).await?))
    }

    /// Every account, disabled ones included, by username.
    pub async fn all_users(&self) -> Result<Vec<User>> {
        let conn = self.db.conn().await?;
        let mut out: Vec<User> = Vec::new();
        loop {
            let after = out.last().map(|u| u.username.clone());
            let rows = users::search(&*conn, None, after.as_deref(), 1000, true).await?;
            let done = rows.len() < 1000;
            out.extend(rows.iter().map(User::from));
            if done {
                return Ok(out);
            }
        }
    }

    /// Sets a new password for a user; all their sessions are revoked.
    pub async fn set_password(&self, username: &str, password: String) -> Result<()> {
        let password = Password::parse(password)?;
        let record = self.find(username).await?;
        let hash = self.hasher.hash(password.expose()).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        users::set_password_hash(&tx, record.id, &hash).await?;
        sessions::revoke_all(&tx, record.id, None, "password_reset").await?;
        audit::record(&tx, AuditAction::PasswordReset, &on(None, record.id)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (and signs out everywhere) or re-enables a user, as the operator.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User> {
        self.set_disabled_by(username, disabled, None).await
    }

    /// `set_disabled`, recorded as done by `by` (a server administrator; `None`: the operator).
    pub async fn set_disabled_by(&self, username: &str, disabled: bool, by: Option<Uuid>) -> Result<User> {
        let record = self.find(username).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        users::set_disabled(&tx, record.id, disabled).await?;
        if disabled {
            sessions::revoke_all(&tx, record.id, None, "account_disabled").await?;
        }
        if record.disabled_at.is_some() != disabled {
            let action = if disabled {
                AuditAction::UserDisabled
            } else {
                AuditAction::UserEnabled
            };
            audit::record(&tx, action, &on(by, record.id)).await?;
        }
        tx.commit().await?;
        self.user(username).await
    }

    pub async fn set_admin(&self, username: &str, admin: bool) -> Result<User> {
        let record = self.find(username).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        users::set_admin(&tx, record.id, admin).await?;
        if record.is_admin != admin {
            let action = if admin {
                AuditAction::AdminGranted
            } else {
                AuditAction::AdminRevoked
            };
            audit::record(&tx, action, &on(None, record.id)).await?;
        }
        tx.commit().await?;
        drop(conn);
        self.user(username).await
    }

    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let record = self.find(username).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        // Recorded first, while the name can still be read from the account.
        audit::record(&tx, AuditAction::UserDeleted, &on(None, record.id)).await?;
        if !users::delete(&tx, record.id).await? {
            return Err(user_not_found(username));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// An audit entry for an action by `actor` (`None`: the operator) on account `target`.
fn on(actor: Option<Uuid>, target: Uuid) -> Entry<'static> {
    Entry {
        actor,
        target: Some(target),
        ..Entry::default()
    }
}
