//! Structured logs via `tracing`, to stderr, as text or JSON (`log.format`).
//! `RUST_LOG`, when set, overrides `log.level`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Directives added to the operator's filter unless it names the target itself:
/// - tokio-postgres logs every statement's parameters at DEBUG: password hashes, refresh-token
///   hashes, message bodies. `debug` is for chatd's own diagnostics; a log must never hold a
///   credential (docs/security.md). Naming `tokio_postgres=debug` explicitly still shows them.
/// - warp's request tracing logs every 4xx answer at WARN; `chatd::http` already logs each
///   request with its status at INFO, and a client's mistake is not the operator's warning.
///   Its ERROR lines (5xx) stay.
const QUIET: [(&str, &str); 2] = [("tokio_postgres", "info"), ("warp::filters::trace", "error")];

pub fn init(log: &LogConfig) {
    let mut spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| log.level.clone());
    for (target, level) in QUIET {
        if !spec.contains(target) {
            spec = format!("{spec},{target}={level}");
        }
    }
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
