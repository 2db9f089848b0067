//! Schema migrations: `migrations/NNNN_name.sql`, embedded in the binary at build time.
//!
//! Each pending migration runs in its own transaction together with the row that records it,
//! so a failure leaves nothing half-applied. A session-level advisory lock serialises
//! concurrent runs (two nodes starting at once, a deploy script racing a server). The SHA-256
//! of every applied file is stored; if a file changes after it was applied, or the database
//! knows a migration this binary does not, we refuse to go on rather than guess.

use std::time::Instant;

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_postgres::Client;

static MIGRATIONS_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// Arbitrary but fixed key for `pg_advisory_lock` ("chatd" in ASCII).
const LOCK_KEY: i64 = 0x0063_6861_7464;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i32,
    pub name: String,
    pub sql: String,
}

impl Migration {
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `0001_init`, as in the file name.
    pub fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("bad migration file name {0}: expected NNNN_name.sql")]
    BadFileName(String),
    #[error("migration {label} was edited after it was applied (applied checksum {applied}, file checksum {file}); restore the original file and add a new migration instead")]
    Edited {
        label: String,
        applied: String,
        file: String,
    },
    #[error("the database has migration {0} applied, which this chatd binary does not know: run a newer chatd")]
    Unknown(String),
    #[error(
        "the database is {0} migration(s) behind this chatd and database.auto_migrate is off: run `chatd migrate`"
    )]
    Behind(usize),
    #[error("migration {label} failed: {source}")]
    Failed {
        label: String,
        source: tokio_postgres::Error,
    },
    #[error("database error while migrating: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// The migrations compiled into this binary, in version order.
pub fn embedded() -> Result<Vec<Migration>, MigrateError> {
    let mut out = Vec::new();
    for file in MIGRATIONS_DIR.files() {
        let fname = file.path().to_string_lossy().to_string();
        let Some(stem) = fname.strip_suffix(".sql") else {
            continue;
        };
        let (num, name) = stem
            .split_once('_')
            .ok_or_else(|| MigrateError::BadFileName(fname.clone()))?;
        let version: i32 = num.parse().map_err(|_| MigrateError::BadFileName(fname.clone()))?;
        let sql = file
            .contents_utf8()
            .ok_or_else(|| MigrateError::BadFileName(fname.clone()))?;
        out.push(Migration {
            version,
            name: name.to_string(),
            sql: sql.to_string(),
        });
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

/// Where one migration stands in a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    Applied,
    /// Applied, but the file in this binary differs from what was applied.
    Edited {
        applied_checksum: String,
    },
    /// Applied, but this binary has no such migration (a newer chatd applied it).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `0001_accounts`.
    pub label: String,
    pub state: State,
    pub applied_at: Option<OffsetDateTime>,
}

impl Status {
    /// Why `migrate up` must refuse to go on, if this row is a reason.
    pub fn problem(&self, migrations: &[Migration]) -> Option<MigrateError> {
        match &self.state {
            State::Edited { applied_checksum } => Some(MigrateError::Edited {
                label: self.label.clone(),
                applied: applied_checksum.clone(),
                file: migrations
                    .iter()
                    .find(|m| m.label() == self.label)
                    .map(Migration::checksum)
                    .unwrap_or_default(),
            }),
            State::Unknown => Some(MigrateError::Unknown(self.label.clone())),
            State::Pending | State::Applied => None,
        }
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL
)";

/// Applies every pending migration; returns the ones applied now.
pub async fn run(client: &mut Client, migrations: &[Migration]) -> Result<Vec<Migration>, MigrateError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = run_locked(client, migrations).await;
    // Unlock even on failure; a lost connection releases it anyway.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    result
}

async fn run_locked(client: &mut Client, migrations: &[Migration]) -> Result<Vec<Migration>, MigrateError> {
    // Checked first, not `IF NOT EXISTS` alone, which logs a NOTICE at every start.
    if !table_exists(client).await? {
        client.batch_execute(CREATE_TABLE).await?;
    }
    let status = check(client, migrations).await?;
    if let Some(problem) = status.iter().find_map(|s| s.problem(migrations)) {
        return Err(problem);
    }
    let pending: Vec<Migration> = migrations
        .iter()
        .zip(&status)
        .filter(|(_, s)| s.state == State::Pending)
        .map(|(m, _)| m.clone())
        .collect();
    for m in &pending {
        let started = Instant::now();
        let tx = client.transaction().await?;
        tx.batch_execute(&m.sql).await.map_err(|source| MigrateError::Failed {
            label: m.label(),
            source,
        })?;
        let ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &m.checksum(), &ms],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = %m.label(), ms, "migration applied");
    }
    Ok(pending)
}

/// Every migration with its state: applied, pending, edited since it was applied, or unknown
/// to this binary. Never refuses: `status` is how an operator finds out what is wrong.
pub async fn status(client: &Client, migrations: &[Migration]) -> Result<Vec<Status>, MigrateError> {
    if !table_exists(client).await? {
        return Ok(migrations
            .iter()
            .map(|m| Status {
                label: m.label(),
                state: State::Pending,
                applied_at: None,
            })
            .collect());
    }
    check(client, migrations).await
}

async fn table_exists(client: &Client) -> Result<bool, MigrateError> {
    Ok(client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0))
}

/// Every migration this binary knows, in order, then any the database has that it does not.
async fn check(client: &Client, migrations: &[Migration]) -> Result<Vec<Status>, MigrateError> {
    let rows = client
        .query(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut applied = std::collections::HashMap::new();
    let mut unknown = Vec::new();
    for row in rows {
        let version: i32 = row.get(0);
        let name: String = row.get(1);
        let checksum: String = row.get(2);
        let at: OffsetDateTime = row.get(3);
        match migrations.iter().find(|m| m.version == version) {
            Some(_) => {
                applied.insert(version, (checksum, at));
            }
            None => unknown.push(Status {
                label: format!("{version:04}_{name}"),
                state: State::Unknown,
                applied_at: Some(at),
            }),
        }
    }
    let known = migrations.iter().map(|m| {
        let (state, applied_at) = match applied.remove(&m.version) {
            None => (State::Pending, None),
            Some((checksum, at)) if checksum == m.checksum() => (State::Applied, Some(at)),
            Some((checksum, at)) => (
                State::Edited {
                    applied_checksum: checksum,
                },
                Some(at),
            ),
        };
        Status {
            label: m.label(),
            state,
            applied_at,
        }
    });
    Ok(known.chain(unknown).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_numbered_without_gaps() {
        let ms = embedded().unwrap();
        assert!(!ms.is_empty());
        for (i, m) in ms.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.label());
        }
    }
}
