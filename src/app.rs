//! The running server: shared state, the listener, and its lifecycle.
//!
//! `Application::build` binds first (port 0 in tests) and reports the real address, then
//! `run_until` serves until the shutdown future resolves: the listener closes at once,
//! in-flight requests get `server.shutdown_grace_secs` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpSocket};

use crate::abuse::Guards;
use crate::admin::metrics::Metrics;
use crate::admin::Node;
use crate::auth::tokens::TokenKeys;
use crate::auth::Accounts;
use crate::bus::{self, Bus};
use crate::chat::Chat;
use crate::cluster::Cluster;
use crate::config::{BusKind, Config};
use crate::db::{migrate, sessions, Db};
use crate::ws::hub::Hub;
use crate::ws::protocol::Close;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub chat: Chat,
    pub hub: Hub,
    pub db: Db,
    pub config: Arc<Config>,
    /// This process as the admin API and `/metrics` describe it.
    pub node: Arc<Node>,
    /// This node among the others sharing the database.
    pub cluster: Cluster,
    /// For asking the other nodes (the admin API's cluster-wide listings).
    pub peers: reqwest::Client,
    /// Login, registration and connection limits.
    pub guards: Guards,
    /// `server.trusted_proxies`, parsed.
    pub proxies: Arc<[ipnet::IpNet]>,
}

impl AppState {
    pub fn new(config: Arc<Config>, db: Db) -> anyhow::Result<Self> {
        let bind = config.server.bind;
        Self::bound(config, db, bind)
    }

    /// The state of a server listening on `addr`.
    pub fn bound(config: Arc<Config>, db: Db, addr: SocketAddr) -> anyhow::Result<Self> {
        let tokens = TokenKeys::from_config(&config)?;
        let key_id = tokens.key_id().to_owned();
        let accounts = Accounts::new(db.clone(), &config, tokens);
        let node = Arc::new(Node::new(
            addr,
            config.cluster.advertise_url.as_deref(),
            &key_id,
            Arc::new(Metrics::new()),
        ));
        let shared = config.cluster.bus == BusKind::Postgres;
        let hub = Hub::new(db.clone(), config.ws.clone(), node.metrics.clone(), node.id, shared);
        let bus = match config.cluster.bus {
            BusKind::Local => Bus::local(hub.clone()),
            BusKind::Postgres => Bus::shared(hub.clone(), node.id),
        };
        let cluster = Cluster::new(node.clone(), hub.clone(), db.clone(), config.cluster.clone());
        Ok(Self {
            accounts,
            chat: Chat::new(db.clone(), bus, &config.limits),
            hub,
            db,
            config: config.clone(),
            node,
            cluster,
            peers: reqwest::Client::builder().no_proxy().build()?,
            guards: Guards::new(&config.limits),
            proxies: config.trusted_proxies()?.into(),
        })
    }
}

/// The server's listening socket. `TCP_NODELAY` is set on it, and Linux gives it to every
/// accepted connection: a flushed frame leaves at once instead of waiting (up to 40 ms) for the
/// peer to acknowledge the previous one (Nagle's algorithm meeting delayed ACKs).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// `/metrics` on an address of its own (`server.metrics_bind`).
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Binds `server.bind` and prepares the state. Does not touch the database.
    pub async fn build(config: Arc<Config>, db: Db) -> anyhow::Result<Self> {
        let listener =
            listen(config.server.bind).with_context(|| format!("cannot listen on {}", config.server.bind))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.server.metrics_bind {
            Some(at) => Some(listen(at).with_context(|| format!("cannot listen on {at} (server.metrics_bind)"))?),
            None => None,
        };
        let state = AppState::bound(config, db, addr)?;
        Ok(Self {
            listener,
            addr,
            metrics_listener,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served when it has an address of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains for at most the grace period.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let Application {
            listener,
            metrics_listener,
            state,
            ..
        } = self;
        let header_timeout = Duration::from_secs(state.config.server.header_read_timeout_secs);
        let metrics_server = metrics_listener.map(|l| {
            let service = warp::service(crate::http::metrics_only(state.clone()));
            tokio::spawn(crate::http::server::serve(
                service,
                l,
                header_timeout,
                std::future::pending(),
                None,
            ))
        });
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        // Registered before any socket is served (presence rows name this node); if the
        // database is away, the heartbeat registers it once it is back.
        let cluster = state.cluster.clone();
        if let Err(e) = cluster.join().await {
            tracing::warn!("could not register this node in the cluster yet: {e}");
        }
        let stop_beating = tokio_util::sync::CancellationToken::new();
        let heartbeat = tokio::spawn(cluster.clone().beat(stop_beating.clone()));
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let sampler = tokio::spawn(crate::admin::sampler(state.node.clone(), state.hub.clone()));
        let stop_listening = tokio_util::sync::CancellationToken::new();
        let listener_task = tokio::spawn(bus::listen(state.db.clone(), state.hub.clone(), stop_listening.clone()));
        let hub = state.hub.clone();
        let hasher = state.accounts.hasher.clone();
        tokio::spawn(async move {
            if let Err(e) = hasher.warm_up().await {
                tracing::warn!("password hasher warm-up failed: {e}");
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
        let server = crate::http::server::serve(
            warp::service(crate::http::routes(state)),
            listener,
            header_timeout,
            async move {
                let _ = stop_rx.await;
            },
            Some(closed_tx),
        );
        let mut server = tokio::spawn(server);
        tokio::select! {
            _ = &mut server => {}
            _ = shutdown => {
                tracing::info!("shutting down: no new connections, {}s for in-flight requests", grace.as_secs());
                let _ = stop_tx.send(());
                // The listener is closed before the sockets are told to go: a client that
                // reconnects at once must be refused here, not accepted by a node on its way out.
                let _ = closed_rx.await;
                // Upgraded sockets are not the HTTP server's to wait for: close them here
                // ("going away": clients reconnect elsewhere and resume with since_seq).
                hub.close_all(Close::GoingAway, grace).await;
                if tokio::time::timeout(grace, &mut server).await.is_err() {
                    tracing::warn!("grace period over; closing remaining connections");
                    server.abort();
                }
            }
        }
        stop_beating.cancel();
        let _ = heartbeat.await;
        // A database that hangs (rather than refuses) must not hold the exit up: the others
        // then time this node out instead.
        if tokio::time::timeout(grace, cluster.leave()).await.is_err() {
            tracing::warn!("leaving the cluster timed out; the other nodes will time this node out");
        }
        housekeeping.abort();
        sampler.abort();
        if let Some(m) = metrics_server {
            m.abort();
        }
        stop_listening.cancel();
        let _ = listener_task.await;
    }
}

/// Applies pending migrations through a pooled connection.
pub async fn apply_migrations(db: &Db) -> anyhow::Result<Vec<migrate::Migration>> {
    let mut conn = db.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let applied = migrate::run(&mut conn, &migrate::embedded()?).await?;
    Ok(applied)
}

/// Makes sure the schema is the one this binary was built for before anything uses it: with
/// `auto_migrate` the pending migrations are applied; without, a database that is behind,
/// edited or ahead of this binary is refused (not migrating is allowed, serving a schema that
/// does not match is not).
pub async fn prepare_schema(db: &Db, auto_migrate: bool) -> anyhow::Result<()> {
    if auto_migrate {
        // Each applied migration is logged by the runner itself.
        apply_migrations(db).await?;
        return Ok(());
    }
    let conn = db.conn().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let migrations = migrate::embedded()?;
    let status = migrate::status(&conn, &migrations).await?;
    if let Some(problem) = status.iter().find_map(|s| s.problem(&migrations)) {
        return Err(problem.into());
    }
    let pending = status.iter().filter(|s| s.state == migrate::State::Pending).count();
    if pending > 0 {
        return Err(migrate::MigrateError::Behind(pending).into());
    }
    Ok(())
}

/// Periodic work that belongs to no request: every minute, live sockets are re-checked against
/// the database (a net under the event bus: a session that merely expired ends too); every
/// hour, ended sessions are purged.
async fn housekeeping(state: AppState) {
    let AppState {
        db, hub, chat, guards, ..
    } = state;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes = 0u64;
    loop {
        tick.tick().await;
        hub.reconcile().await;
        chat.prune_limits();
        guards.prune();
        minutes += 1;
        if minutes % 60 != 1 {
            continue;
        }
        match db.conn().await {
            Ok(conn) => match sessions::purge_ended(&*conn).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "purged ended sessions"),
                Err(e) => tracing::warn!("session purge failed: {e}"),
            },
            Err(e) => tracing::warn!("session purge skipped: {e}"),
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from the moment this is created.
///
/// Create it before doing anything that must be undone (starting the embedded cluster): once
/// it exists the signals no longer kill the process, they are queued here, so a signal that
/// arrives during start-up or a short command is seen and the cluster is stopped on the way
/// out instead of being orphaned.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the listeners. Needs a running tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    /// A signal that already arrived, if any, without waiting.
    pub fn pending(&mut self) -> Option<&'static str> {
        use futures_util::FutureExt as _;
        self.recv().now_or_never()
    }
}
