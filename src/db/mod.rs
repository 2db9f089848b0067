//! Storage: the connection pool, the embedded cluster, migrations, and one repository module
//! per table group. Repository functions take a `GenericClient` so they run the same inside or
//! outside a transaction; business rules live in `auth` and `users`, not here.

pub mod audit;
pub mod datadir;
pub mod embedded;
pub mod invites;
pub mod mentions;
pub mod messages;
pub mod migrate;
pub mod nodes;
pub mod reactions;
pub mod replies;
pub mod rooms;
pub mod search;
pub mod sessions;
pub mod unread;
pub mod users;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bb8::{Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::NoTls;

use crate::config::Config;
use crate::error::Error;
use embedded::{Embedded, EmbeddedError, EmbeddedOptions};

pub type PgPool = Pool<Manager>;
pub type PgConn<'a> = PooledConnection<'a, Manager>;

/// bb8-postgres's connection manager with a checkout test that costs no round trip.
///
/// bb8 tests every connection it hands out; bb8-postgres tests by sending an empty query, a
/// round trip to PostgreSQL before every request's first real one (measured: a third of an
/// unloaded history request). A connection whose socket has closed — PostgreSQL restarted,
/// the backend was terminated — is known to be closed without asking (tokio-postgres marks
/// its client closed when the connection task ends), so only such a one is probed, for the
/// error that makes bb8 replace it.
pub struct Manager(PostgresConnectionManager<NoTls>);

impl bb8::ManageConnection for Manager {
    type Connection = tokio_postgres::Client;
    type Error = tokio_postgres::Error;

    fn connect(&self) -> impl std::future::Future<Output = Result<Self::Connection, Self::Error>> + Send {
        self.0.connect()
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        if !conn.is_closed() {
            return Ok(());
        }
        conn.simple_query("").await.map(drop)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.is_closed()
    }
}

/// The shared connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    last_error: LastError,
    /// How the pool connects, kept for connections that must not be pooled (`LISTEN`).
    pg: Arc<tokio_postgres::Config>,
    max_size: u32,
    /// How long getting a connection may take, pooled or not.
    timeout: Duration,
}

/// The pool's most recent failure to connect, so that "timed out waiting for a connection"
/// can say why (connection refused, authentication failed…). Never holds a password:
/// tokio-postgres errors do not quote the connection string.
#[derive(Debug, Clone, Default)]
struct LastError(Arc<Mutex<Option<(Instant, String)>>>);

impl LastError {
    /// The latest failure if it happened at or after `since`: one from before a wait began is
    /// not why that wait timed out.
    fn since(&self, since: Instant) -> Option<String> {
        let latest = self.0.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|(at, _)| *at >= since)
            .map(|(_, text)| text.clone())
    }
}

impl bb8::ErrorSink<tokio_postgres::Error> for LastError {
    fn sink(&self, e: tokio_postgres::Error) {
        // tokio-postgres keeps the cause (refused, role does not exist…) in the source chain.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), text));
    }
    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<tokio_postgres::Error>> {
        Box::new(self.clone())
    }
}

impl Db {
    /// Builds a pool without connecting: the first query connects, so a server can start (and
    /// answer `/readyz` with 503) while the database is still down.
    pub fn new(pg: tokio_postgres::Config, size: u32, timeout: Duration) -> Self {
        let manager = Manager(PostgresConnectionManager::new(pg.clone(), NoTls));
        let last_error = LastError::default();
        let pool = Pool::builder()
            .max_size(size)
            .connection_timeout(timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .error_sink(Box::new(last_error.clone()))
            .build_unchecked(manager);
        Self {
            pool,
            last_error,
            pg: Arc::new(pg),
            max_size: size,
            timeout,
        }
    }

    /// A connection of its own, outside the pool: pooled connections drop notifications, so
    /// `LISTEN` needs one. The caller must poll the returned `Connection`.
    ///
    /// Bounded by the pool's timeout as a whole: tokio-postgres's `connect_timeout` covers only
    /// opening the socket, and a server that takes the socket but never answers the startup
    /// (a hung postmaster accepts into its backlog) would otherwise hold the caller for good —
    /// the message writers, and so every send, included.
    pub async fn connect_dedicated(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        Error,
    > {
        match tokio::time::timeout(self.timeout, self.pg.connect(NoTls)).await {
            Ok(connected) => connected.map_err(|e| Error::Unavailable(format!("database connection failed: {e}"))),
            Err(_) => Err(Error::Unavailable(format!(
                "database connection failed: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// A pooled connection, or `Error::Unavailable` if none can be had in time.
    pub async fn conn(&self) -> Result<PgConn<'_>, Error> {
        let waiting_since = Instant::now();
        self.pool.get().await.map_err(|e| match e {
            RunError::User(e) => Error::Unavailable(format!("database connection failed: {e}")),
            RunError::TimedOut => Error::Unavailable(match self.last_error.since(waiting_since) {
                Some(cause) => format!("timed out waiting for a database connection (last attempt: {cause})"),
                None => "timed out waiting for a database connection".into(),
            }),
        })
    }

    /// `true` when the database answers a trivial query.
    pub async fn is_ready(&self) -> bool {
        match self.conn().await {
            Ok(c) => tokio::time::timeout(Duration::from_secs(2), c.simple_query("SELECT 1"))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    pub fn pool_state(&self) -> bb8::State {
        self.pool.state()
    }

    /// The pool's size limit.
    /// How long getting a connection may take (`database.connect_timeout_secs`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn max_size(&self) -> u32 {
        self.max_size
    }
}

/// How often `Database::supervise` checks that the embedded cluster's postmaster is there.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

/// The task behind `Database::supervise`.
pub struct Supervisor {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Ends the watch, after any restart in progress has finished: call it before `close`,
    /// so that no restart races the cluster's stop.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// An open database: the pool, plus the embedded cluster when there is one.
pub struct Database {
    pub db: Db,
    /// The embedded cluster, its data dir and our registration as one of its users.
    embedded: Option<(Embedded, std::path::PathBuf, std::fs::File)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error("invalid database.url: {0}")]
    Url(String),
    #[error(transparent)]
    Lock(#[from] datadir::LockError),
}

impl Database {
    /// Opens the configured database: `database.url` when set, else the embedded cluster under
    /// the data dir (created and started as needed). Every chatd process that opens the
    /// embedded cluster is one of its users; the last user to close it stops it.
    pub async fn open(config: &Config) -> Result<Self, OpenError> {
        let timeout = Duration::from_secs(config.database.connect_timeout_secs);
        if let Some(url) = config.database_url() {
            let mut pg: tokio_postgres::Config = url.parse().map_err(|e| OpenError::Url(format!("{e}")))?;
            pg.application_name("chatd");
            if pg.get_connect_timeout().is_none() {
                pg.connect_timeout(timeout);
            }
            // Pooled connections are handed out without a round trip (see `Manager`): one whose
            // peer vanished without closing it (a NAT or firewall dropping an idle flow) must be
            // found by the kernel instead, in about a minute rather than the default two hours.
            // Settings in the URL win.
            if pg.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
                pg.keepalives_idle(Duration::from_secs(30));
            }
            if pg.get_keepalives_interval().is_none() {
                pg.keepalives_interval(Duration::from_secs(10));
            }
            if pg.get_keepalives_retries().is_none() {
                pg.keepalives_retries(3);
            }
            let db = Db::new(pg, config.database.pool_size, timeout);
            return Ok(Self { db, embedded: None });
        }
        let data_dir = config.server.data_dir.clone();
        let lock = datadir::lock_embedded(&data_dir).await?;
        let embedded = Embedded::prepare(&EmbeddedOptions {
            data_dir: data_dir.clone(),
            bin_dir: config.database.pg_bin_dir.clone(),
            run_as_user: config.database.embedded_user.clone(),
            durable: true,
        })
        .await?;
        // Join before starting, so that a start that fails half-way (the postmaster is up but
        // the `chatd` database cannot be made) can tell whether the cluster is ours to stop.
        let membership = datadir::join_embedded(&data_dir)?;
        if let Err(e) = embedded.start().await {
            if datadir::leave_embedded(&data_dir, membership) {
                let _ = embedded.stop().await;
            }
            return Err(e.into());
        }
        drop(lock);
        let db = Db::new(
            embedded.connect_config(embedded::DATABASE),
            config.database.pool_size,
            timeout,
        );
        Ok(Self {
            db,
            embedded: Some((embedded, data_dir, membership)),
        })
    }

    /// Watches the embedded cluster while chatd serves: a postmaster process that is gone
    /// (killed, out of memory) is started again. One that is alive but does not answer (busy,
    /// out of connection slots, recovering) is left alone: `/readyz` reports it. The receiver
    /// hears, with the reason, when the cluster cannot be started again. Nothing is watched
    /// for an external database.
    pub fn supervise(&self) -> (Supervisor, tokio::sync::oneshot::Receiver<EmbeddedError>) {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let embedded = self
            .embedded
            .as_ref()
            .map(|(embedded, data_dir, _)| (embedded.clone(), data_dir.clone()));
        let task = tokio::spawn(async move {
            let Some((embedded, data_dir)) = embedded else {
                let _ = stopped.changed().await;
                return;
            };
            let mut failures = 0;
            loop {
                // Stopping is only noticed here, never in the middle of a restart.
                tokio::select! {
                    _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
                    _ = stopped.changed() => return,
                }
                if embedded.postmaster_alive() || embedded.ping().await {
                    continue;
                }
                tracing::warn!("the embedded PostgreSQL is gone: starting it again");
                // Under the lock that every start and stop of the cluster takes.
                let restarted = match datadir::lock_embedded(&data_dir).await {
                    Ok(lock) => {
                        let started = embedded.start().await;
                        drop(lock);
                        started
                    }
                    Err(e) => Err(EmbeddedError::Io(e.to_string())),
                };
                match restarted {
                    Ok(()) => {
                        failures = 0;
                        tracing::info!("the embedded PostgreSQL is back");
                    }
                    Err(e) if failures >= 2 => {
                        let _ = lost_tx.send(e);
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::error!("could not start the embedded PostgreSQL again: {e}");
                    }
                }
            }
        });
        (Supervisor { stop, task }, lost_rx)
    }

    /// Releases the pool and, when no other chatd process uses it, stops the embedded cluster.
    pub async fn close(self) {
        let Database { db, embedded } = self;
        drop(db);
        let Some((embedded, data_dir, membership)) = embedded else {
            return;
        };
        // Held while deciding and stopping, so a `serve` cannot attach in between.
        let _lock = match datadir::lock_embedded(&data_dir).await {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        if datadir::leave_embedded(&data_dir, membership) {
            if let Err(e) = embedded.stop().await {
                tracing::error!("could not stop embedded PostgreSQL: {e}");
            }
        } else {
            tracing::info!("embedded PostgreSQL left running: another chatd process uses it");
        }
    }
}

/// `true` for errors that mean "the database is not there", as opposed to a bad query: a lost
/// connection, or what PostgreSQL answers as it goes away or before it is back (see
/// [`sqlstate_is_unavailable`]).
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        _ if e.is_closed() => true,
        Some(state) => sqlstate_is_unavailable(state.code()),
        None => e.as_db_error().is_none(),
    }
}

/// SQLSTATEs that say the server is unavailable, not that the query is wrong: class 08
/// (connection exception) and 57P01–57P03 (shutting down, crashed, not accepting connections
/// yet). A query in flight when PostgreSQL is stopped fails with 57P01, not with a closed
/// connection; that is a moment to retry (503), not a server bug (500).
fn sqlstate_is_unavailable(state: &str) -> bool {
    state.starts_with("08") || matches!(state, "57P01" | "57P02" | "57P03")
}

#[cfg(test)]
mod tests {
    use super::sqlstate_is_unavailable;

    #[test]
    fn shutdown_and_connection_sqlstates_are_unavailable_query_errors_are_not() {
        for state in ["57P01", "57P02", "57P03", "08000", "08006", "08P01"] {
            assert!(sqlstate_is_unavailable(state), "{state}");
        }
        // Cancelled, a dropped database, a deadlock, a duplicate key, bad input.
        for state in ["57014", "57P04", "40P01", "23505", "22P02"] {
            assert!(!sqlstate_is_unavailable(state), "{state}");
        }
    }
}
