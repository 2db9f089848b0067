//! `chatd serve`: open the database (embedded or `database.url`), migrate, serve until
//! Ctrl-C / SIGTERM, then stop the embedded cluster cleanly.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::app::{prepare_schema, Application, Signals};
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db::{datadir, Database};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: server.bind, 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<SocketAddr>,
    /// Do not apply pending migrations at start, and refuse to start while any are pending
    /// (same as database.auto_migrate = false)
    #[arg(long)]
    pub no_migrate: bool,
}

impl ServeArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(bind) = self.bind {
            config.server.bind = bind;
        }
        if self.no_migrate {
            config.database.auto_migrate = false;
        }
    }
}

pub async fn run(config: Config, mut signals: Signals) -> Result<(), CliError> {
    // A configured secret file that cannot be used is a configuration error: say so before
    // any database is started.
    if config.auth.jwt_secret_file.is_some() {
        TokenKeys::from_config(&config).map_err(|e| CliError::usage(format!("invalid configuration: {e:#}")))?;
    }
    // One `serve` per data dir: a second one would share, then stop, the first one's cluster.
    let _lock = match config.database_url() {
        None => Some(datadir::lock_serve(&config.server.data_dir).map_err(|e| CliError::failure(e.to_string()))?),
        Some(_) => None,
    };
    raise_open_files_limit();
    let config = Arc::new(config);
    // Opening is not interrupted half-way (the cluster could be left starting with nobody to
    // stop it); a signal that arrives meanwhile is seen right after, and is a normal stop.
    let database = Database::open(&config).await?;
    let result = match signals.pending() {
        Some(signal) => {
            tracing::info!("{signal} received during start-up; stopping");
            Ok(())
        }
        None => serve(&config, &database, signals).await,
    };
    database.close().await;
    result
}

async fn serve(config: &Arc<Config>, database: &Database, mut signals: Signals) -> Result<(), CliError> {
    // Start-up (migrations, binding) races the signals too: a Ctrl-C here stops chatd, and
    // the caller still closes the database.
    let app = tokio::select! {
        app = start(config, database) => app?,
        signal = signals.recv() => {
            tracing::info!("{signal} received during start-up; stopping");
            return Ok(());
        }
    };
    tracing::info!(
        "chatd {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        app.local_addr()
    );
    let cluster = &config.cluster;
    let bus = match cluster.bus {
        crate::config::BusKind::Local => "local",
        crate::config::BusKind::Postgres => "postgres",
    };
    tracing::info!(
        node = %app.state().node.id,
        bus,
        "cluster node: heartbeat every {}s, silent nodes expire after {}s",
        cluster.heartbeat_secs,
        cluster.node_timeout_secs
    );
    if let Some(at) = app.metrics_addr() {
        tracing::info!("metrics at http://{at}/metrics");
    }
    // Stops on a signal, or with an error when the embedded cluster is lost for good (a
    // service manager then restarts chatd).
    let (supervisor, lost) = database.supervise();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    app.run_until(async move {
        tokio::select! {
            signal = signals.recv() => tracing::info!("{signal} received"),
            Ok(lost) = lost => {
                tracing::error!("the embedded PostgreSQL cannot be started again: {lost}");
                let _ = failed_tx.send(lost);
            }
        }
    })
    .await;
    supervisor.stop().await;
    match failed_rx.await {
        Ok(lost) => Err(CliError::failure(format!(
            "the embedded PostgreSQL stopped and cannot be started again: {lost}"
        ))),
        Err(_) => Ok(()),
    }
}

/// Everything between an open database and a bound listener.
async fn start(config: &Arc<Config>, database: &Database) -> Result<Application, CliError> {
    prepare_schema(&database.db, config.database.auto_migrate).await?;
    if config.database_url().is_some() && config.auth.jwt_secret.is_none() && config.auth.jwt_secret_file.is_none() {
        tracing::warn!(
            "no auth.jwt_secret configured: using one generated in {}; nodes sharing this database need one secret (auth.jwt_secret_file)",
            config.server.data_dir.display()
        );
    }
    Ok(Application::build(config.clone(), database.db.clone()).await?)
}

/// Every WebSocket is an open file: raise the soft limit on open files to the hard limit (the
/// most an unprivileged process may), so the server holds as many sockets as the system lets it.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!("open files limit raised from {soft} to {hard}"),
            Err(e) => tracing::warn!("open files limit stays at {soft}: {e}"),
        },
        Ok((soft, _)) => tracing::debug!("open files limit: {soft}"),
        Err(e) => tracing::warn!("open files limit unknown: {e}"),
    }
}
