//! Profile reads and edits, user search, and the operator's administration of accounts
//! (`chatd user …`). Administration that ends access (disable, password reset, delete)
//! revokes the user's sessions in the same transaction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use super::{AvatarUrl, Bio, DisplayName, Password, PublicProfile, User, Username};
use crate::auth::{Accounts, AuthUser};
use crate::db::users::{ProfileChange, UserRecord};
use crate::db::{sessions, users};
use crate::error::{Error, Result};

/// `PATCH /users/me`: absent fields stay, `null` (or "") clears, a value sets.
#[derive(Debug, Default, Clone)]
pub struct ProfileUpdate {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

/// One page of a cursor-paginated list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub const SEARCH_DEFAULT_LIMIT: i64 = 20;
pub const SEARCH_MAX_LIMIT: i64 = 100;
pub const SEARCH_LIMIT_RULE: &str = "limit must be a whole number from 1 to 100";
const SEARCH_QUERY_MAX: usize = 64;

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
        let limit = limit.unwrap_or(SEARCH_DEFAULT_LIMIT);
        if !(1..=SEARCH_MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid("invalid_limit", SEARCH_LIMIT_RULE));
        }
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        if query.is_some_and(|q| q.chars().count() > SEARCH_QUERY_MAX || q.chars().any(char::is_control)) {
            return Err(Error::invalid(
                "invalid_query",
                format!("q must be at most {SEARCH_QUERY_MAX} characters, without control characters"),
            ));
        }
        let after = cursor.map(decode_cursor).transpose()?;
        let rows = users::search(&*self.db.conn().await?, query, after.as_deref(), limit + 1, false).await?;
        Ok(page(rows, limit, |r| PublicProfile::from(r)))
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
        tx.commit().await?;
        Ok(())
    }

    /// Disables (and signs out everywhere) or re-enables a user.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<User> {
        let record = self.find(username).await?;
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await?;
        users::set_disabled(&tx, record.id, disabled).await?;
        if disabled {
            sessions::revoke_all(&tx, record.id, None, "account_disabled").await?;
        }
        tx.commit().await?;
        self.user(username).await
    }

    pub async fn set_admin(&self, username: &str, admin: bool) -> Result<User> {
        let record = self.find(username).await?;
        users::set_admin(&*self.db.conn().await?, record.id, admin).await?;
        self.user(username).await
    }

    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let record = self.find(username).await?;
        users::delete(&*self.db.conn().await?, record.id).await?;
        Ok(())
    }
}

/// Turns `limit + 1` fetched rows into a page: the extra row only says "there is more".
fn page<T>(mut rows: Vec<UserRecord>, limit: i64, view: impl Fn(&UserRecord) -> T) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| URL_SAFE_NO_PAD.encode(&r.username))
    } else {
        None
    };
    Page {
        items: rows.iter().map(view).collect(),
        next_cursor,
    }
}

/// A cursor is the base64 of the last username on the previous page; anything else is refused.
fn decode_cursor(cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|name| Username::parse(&name).ok())
        .map(|name| name.as_str().to_owned())
        .ok_or_else(|| Error::invalid("invalid_cursor", "cursor is not one this server returned"))
}
