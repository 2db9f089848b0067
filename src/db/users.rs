//! The `users` table.

use time::OffsetDateTime;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub password_hash: String,
    pub is_admin: bool,
    pub disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str =
    "id, username, display_name, bio, avatar_url, password_hash, is_admin, disabled_at, created_at, updated_at";

impl From<&Row> for UserRecord {
    fn from(r: &Row) -> Self {
        Self {
            id: r.get(0),
            username: r.get(1),
            display_name: r.get(2),
            bio: r.get(3),
            avatar_url: r.get(4),
            password_hash: r.get(5),
            is_admin: r.get(6),
            disabled_at: r.get(7),
            created_at: r.get(8),
            updated_at: r.get(9),
        }
    }
}

fn one(row: Option<Row>) -> Option<UserRecord> {
    row.as_ref().map(UserRecord::from)
}

/// Inserts a user; `None` if the username is taken.
pub async fn insert(
    c: &impl GenericClient,
    username: &str,
    display_name: Option<&str>,
    password_hash: &str,
    is_admin: bool,
) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO users (id, username, display_name, password_hash, is_admin) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (lower(username)) DO NOTHING RETURNING {COLUMNS}"
    );
    let row = c
        .query_opt(
            &sql,
            &[&Uuid::new_v4(), &username, &display_name, &password_hash, &is_admin],
        )
        .await?;
    Ok(one(row))
}

pub async fn by_username(c: &impl GenericClient, username: &str) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE lower(username) = lower($1)");
    Ok(one(c.query_opt(&sql, &[&username]).await?))
}

pub async fn by_id(c: &impl GenericClient, id: Uuid) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(one(c.query_opt(&sql, &[&id]).await?))
}

/// A partial profile update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

pub async fn update_profile(
    c: &impl GenericClient,
    id: Uuid,
    change: &ProfileChange,
) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE users SET \
           display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
           bio          = CASE WHEN $4 THEN $5 ELSE bio END, \
           avatar_url   = CASE WHEN $6 THEN $7 ELSE avatar_url END, \
           updated_at   = CASE WHEN ($2 AND $3 IS DISTINCT FROM display_name) \
                                 OR ($4 AND $5 IS DISTINCT FROM bio) \
                                 OR ($6 AND $7 IS DISTINCT FROM avatar_url) \
                               THEN now() ELSE updated_at END \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let flag = |f: &Option<Option<String>>| f.is_some();
    let value = |f: &Option<Option<String>>| f.clone().flatten();
    let row = c
        .query_opt(
            &sql,
            &[
                &id,
                &flag(&change.display_name),
                &value(&change.display_name),
                &flag(&change.bio),
                &value(&change.bio),
                &flag(&change.avatar_url),
                &value(&change.avatar_url),
            ],
        )
        .await?;
    Ok(one(row))
}

pub async fn set_password_hash(c: &impl GenericClient, id: Uuid, hash: &str) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
            &[&id, &hash],
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_disabled(c: &impl GenericClient, id: Uuid, disabled: bool) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END, \
             updated_at = now() WHERE id = $1",
            &[&id, &disabled],
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_admin(c: &impl GenericClient, id: Uuid, admin: bool) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE users SET is_admin = $2, updated_at = now() WHERE id = $1",
            &[&id, &admin],
        )
        .await?;
    Ok(n == 1)
}

/// Deletes an account (its sessions go with it: their sockets close when this commits).
pub async fn delete(c: &impl GenericClient, id: Uuid) -> Result<bool, tokio_postgres::Error> {
    let deleted = c.execute("DELETE FROM users WHERE id = $1", &[&id]).await? == 1;
    if deleted {
        let event = crate::bus::Event::UserSessionsEnded {
            user_id: id,
            keep: None,
            reason: "account_deleted".into(),
        };
        crate::bus::notify(c, &event).await?;
    }
    Ok(deleted)
}

/// Users ordered by username, after the cursor `after`, optionally matching `query` (a prefix
/// of the username or a substring of the display name). `include_disabled` is for admins.
pub async fn search(
    c: &impl GenericClient,
    query: Option<&str>,
    after: Option<&str>,
    limit: i64,
    include_disabled: bool,
) -> Result<Vec<UserRecord>, tokio_postgres::Error> {
    let pattern = query.map(escape_like);
    let sql = format!(
        "SELECT {COLUMNS} FROM users \
         WHERE ($1 OR disabled_at IS NULL) \
           AND ($2::text IS NULL OR username LIKE lower($2) || '%' OR display_name ILIKE '%' || $2 || '%') \
           AND ($3::text IS NULL OR username > $3) \
         ORDER BY username LIMIT $4"
    );
    let rows = c.query(&sql, &[&include_disabled, &pattern, &after, &limit]).await?;
    Ok(rows.iter().map(UserRecord::from).collect())
}

/// Escapes LIKE wildcards so a search for `a_b` matches only that text.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
