//! Structured logs via `tracing`, to stderr, as text or JSON (`log.format`).
//! `RUST_LOG`, when set, overrides `log.level`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// warp logs every malformed HTTP connection (bad Content-Length, over-long URI…) at ERROR:
/// those are the client's errors, and any client could flood the log with them. Silenced
/// unless the operator's filter names this target itself.
const CLIENT_CONNECTION_ERRORS: &str = "warp::server::run";

pub fn init(log: &LogConfig) {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| log.level.clone());
    let spec = if spec.contains(CLIENT_CONNECTION_ERRORS) {
        spec
    } else {
        format!("{spec},{CLIENT_CONNECTION_ERRORS}=off")
    };
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
