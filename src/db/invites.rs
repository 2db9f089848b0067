//! The `room_invites` table: invite codes to a room, with an expiry, a use limit and a
//! revocation. Whether an invite is still usable is decided here, by PostgreSQL's clock, in the
//! one `UPDATE` that counts a use (`consume`), so concurrent accepts can never exceed the limit.

use time::OffsetDateTime;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct InviteRecord {
    pub code: String,
    pub room_id: Uuid,
    /// The creator's username; `None` for the operator or a deleted account.
    pub created_by: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked_at: Option<OffsetDateTime>,
    /// Past `expires_at` by the database's clock when read.
    pub expired: bool,
}

/// The columns of `InviteRecord`, for a query over `room_invites i`.
const COLUMNS: &str = "i.code, i.room_id, u.username, i.created_at, i.expires_at, i.max_uses, i.uses, \
                       i.revoked_at, i.expires_at <= now()";

impl From<&Row> for InviteRecord {
    fn from(r: &Row) -> Self {
        Self {
            code: r.get(0),
            room_id: r.get(1),
            created_by: r.get(2),
            created_at: r.get(3),
            expires_at: r.get(4),
            max_uses: r.get(5),
            uses: r.get(6),
            revoked_at: r.get(7),
            expired: r.get(8),
        }
    }
}

/// Stores a new invite, expiring `ttl_secs` from now (the database's now).
pub async fn insert(
    c: &impl GenericClient,
    code: &str,
    room: Uuid,
    by: Option<Uuid>,
    ttl_secs: i64,
    max_uses: Option<i32>,
) -> Result<InviteRecord, tokio_postgres::Error> {
    let sql = format!(
        "WITH i AS (INSERT INTO room_invites (code, room_id, created_by, expires_at, max_uses) \
                    VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint), $5) RETURNING *) \
         SELECT {COLUMNS} FROM i LEFT JOIN users u ON u.id = i.created_by"
    );
    let row = c.query_one(&sql, &[&code, &room, &by, &ttl_secs, &max_uses]).await?;
    Ok(InviteRecord::from(&row))
}

pub async fn by_code(c: &impl GenericClient, code: &str) -> Result<Option<InviteRecord>, tokio_postgres::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM room_invites i LEFT JOIN users u ON u.id = i.created_by WHERE i.code = $1");
    Ok(c.query_opt(&sql, &[&code]).await?.as_ref().map(InviteRecord::from))
}

/// A room's invites, newest first, after the cursor `(created_at, code)`.
pub async fn list(
    c: &impl GenericClient,
    room: Uuid,
    after: Option<(OffsetDateTime, &str)>,
    limit: i64,
) -> Result<Vec<InviteRecord>, tokio_postgres::Error> {
    let (at, code) = after.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM room_invites i LEFT JOIN users u ON u.id = i.created_by \
         WHERE i.room_id = $1 AND ($2::timestamptz IS NULL OR (i.created_at, i.code COLLATE \"C\") < ($2, $3::text COLLATE \"C\")) \
         ORDER BY i.created_at DESC, i.code COLLATE \"C\" DESC LIMIT $4"
    );
    let rows = c.query(&sql, &[&room, &at, &code, &limit]).await?;
    Ok(rows.iter().map(InviteRecord::from).collect())
}

/// Revokes `room`'s invite `code`: `None` if there is no such invite, `Some(false)` if it was
/// revoked already.
pub async fn revoke(
    c: &impl GenericClient,
    room: Uuid,
    code: &str,
    by: Option<Uuid>,
) -> Result<Option<bool>, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE room_invites SET revoked_at = now(), revoked_by = $3 \
             WHERE code = $1 AND room_id = $2 AND revoked_at IS NULL",
            &[&code, &room, &by],
        )
        .await?;
    if n == 1 {
        return Ok(Some(true));
    }
    let exists = c
        .query_opt(
            "SELECT 1 FROM room_invites WHERE code = $1 AND room_id = $2",
            &[&code, &room],
        )
        .await?;
    Ok(exists.map(|_| false))
}

/// Counts one use of `code` if it is still usable (not revoked, not expired, not used up);
/// `false` if not. One statement: concurrent calls queue on the row and each re-checks the
/// limit against the count the one before it left.
pub async fn consume(c: &impl GenericClient, code: &str) -> Result<bool, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE room_invites SET uses = uses + 1 \
             WHERE code = $1 AND revoked_at IS NULL AND expires_at > now() \
               AND (max_uses IS NULL OR uses < max_uses)",
            &[&code],
        )
        .await?;
    Ok(n == 1)
}
