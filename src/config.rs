//! Layered configuration.
//!
//! Precedence, lowest first: built-in defaults < config file (`--config PATH`, else
//! `./config.toml` when present) < environment (`CHATD_SECTION__KEY`) < command-line flags.
//! `config.toml` at the repository root documents every key with its default; keep the two in
//! step. Unknown keys are rejected so that a typo never silently falls back to a default.
//! Errors name the offending key in one line; the CLI turns them into exit code 2.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";
/// Shortest accepted JWT signing secret, in bytes (HS256 wants at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Keys whose environment variables are used exactly as written, never parsed as numbers or
/// booleans.
const TEXT_KEYS: [&str; 10] = [
    "server.data_dir",
    "database.url",
    "database.pg_bin_dir",
    "database.embedded_user",
    "auth.jwt_secret",
    "auth.jwt_secret_file",
    "auth.issuer",
    "log.level",
    "cluster.advertise_url",
    "server.content_security_policy",
];

/// `auth__jwt_secret` → `auth.jwt_secret`.
fn dotted(env_key: &str) -> String {
    env_key.to_ascii_lowercase().replace("__", ".")
}

/// The API serves JSON only: no document it sends may load or frame anything.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Longest refresh-token lifetime: a year. Far beyond it, expiry dates overflow the calendar.
pub const MAX_REFRESH_TOKEN_TTL_SECS: u64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub ws: WsConfig,
    pub limits: LimitsConfig,
    pub cluster: ClusterConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP/WebSocket listener binds.
    pub bind: SocketAddr,
    /// Directory for chatd's own state: the embedded PostgreSQL cluster, the generated JWT secret.
    pub data_dir: PathBuf,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// How long shutdown waits for in-flight requests before giving up, in seconds.
    pub shutdown_grace_secs: u64,
    /// A separate address serving `/metrics` alone; unset: `/metrics` is on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// A connection must send a whole request head within this many seconds of starting one,
    /// or of finishing the previous request (idle keep-alive), or it is closed.
    pub header_read_timeout_secs: u64,
    /// A request body must arrive whole within this many seconds (else 408).
    pub body_read_timeout_secs: u64,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Browser origins (`https://chat.example.com`) whose scripts may call the API; empty: none
    /// (same-origin pages and non-browser clients are unaffected).
    pub cors_allowed_origins: Vec<String>,
    /// `Strict-Transport-Security` max-age to send, in seconds; 0: not sent (set it when
    /// clients reach chatd over HTTPS only).
    pub hsts_max_age_secs: u64,
    /// The `Content-Security-Policy` of every response; empty: not sent.
    pub content_security_policy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` URL. Absent or empty: embedded mode (a private cluster under the data dir).
    pub url: Option<String>,
    /// Maximum pooled connections.
    pub pool_size: u32,
    /// Seconds to wait for a database connection (pooled, or a writer's or the listener's
    /// own) before answering 503.
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
    /// Directory holding `initdb`, `pg_ctl` and `postgres` for embedded mode (searched if absent).
    pub pg_bin_dir: Option<PathBuf>,
    /// Unprivileged account that runs the embedded cluster when chatd runs as root.
    pub embedded_user: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 signing secret (≥ 32 bytes). Prefer `jwt_secret_file` or the environment.
    pub jwt_secret: Option<String>,
    /// File holding the signing secret. If neither is set, one is generated in the data dir.
    pub jwt_secret_file: Option<PathBuf>,
    /// `iss` claim written and required in access tokens.
    pub issuer: String,
    /// Access-token lifetime, seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime, seconds (each rotation starts a new period).
    pub refresh_token_ttl_secs: u64,
    /// PBKDF2-HMAC-SHA256 iterations for new hashes; weaker stored hashes are upgraded at login.
    pub pbkdf2_iterations: u32,
    /// Threads that may hash passwords at once; 0 = half the CPU cores (at least 1).
    pub hash_workers: usize,
}

/// The WebSocket gateway (`GET /api/v1/ws`); see docs/protocol.md.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Seconds between server pings; a peer silent for two intervals is dropped.
    pub heartbeat_secs: u64,
    /// Largest accepted client frame, in bytes; a larger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// Frames that may wait for a slow client before it is closed with 4008 `slow_consumer`.
    pub outbound_queue: usize,
    /// Rooms one connection may be subscribed to at once.
    pub max_subscriptions: usize,
    /// `typing` frames are relayed at most once per this many milliseconds per connection and room.
    pub typing_interval_ms: u64,
    /// Presence is shared through rooms with at most this many members (0: never).
    pub presence_max_members: i64,
}

/// Abuse limits that hold on every path (REST and WebSocket alike).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Messages one user may send per second, sustained (0: no limit).
    pub messages_per_sec: u32,
    /// Messages one user may send in a burst above the sustained rate.
    pub message_burst: u32,
    /// Login attempts one address may make per minute (0: no limit).
    pub login_attempts_per_ip_per_min: u32,
    /// Failed logins for one username before its back-off starts.
    pub login_free_failures: u32,
    /// The longest wait a username's back-off imposes, in seconds (it doubles from 1 s).
    pub login_max_backoff_secs: u64,
    /// Accounts one address may register per hour (0: no limit).
    pub registrations_per_ip_per_hour: u32,
    /// WebSocket connections one account may hold open on a node (0: no limit).
    pub ws_connections_per_user: usize,
    /// WebSocket connections one address may hold open on a node (0: no limit).
    pub ws_connections_per_ip: usize,
}

/// How new messages reach the sockets of other `chatd serve` nodes sharing the database.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// One node: messages go from the message service to this process's hub only.
    Local,
    /// Several nodes: every message is also sent with PostgreSQL `NOTIFY` to the others.
    Postgres,
}

/// Several nodes sharing one database (docs/cluster.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `local` (one node) or `postgres` (nodes fan out to each other through LISTEN/NOTIFY).
    pub bus: BusKind,
    /// Seconds between a node's heartbeats in the `nodes` table.
    pub heartbeat_secs: u64,
    /// A node silent this long is dead: its users' presence is expired by the others.
    pub node_timeout_secs: u64,
    /// Where the other nodes reach this node's API (the admin API gathers every node's
    /// connections through it). Unset: `http://` + `server.bind`, with the hostname in place of
    /// an unspecified address (`0.0.0.0`, `::`).
    pub advertise_url: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            bus: BusKind::Local,
            heartbeat_secs: 5,
            node_timeout_secs: 20,
            advertise_url: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `chatd=debug,warp=info`… `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 64 * 1024,
            shutdown_grace_secs: 10,
            metrics_bind: None,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            hsts_max_age_secs: 0,
            content_security_policy: DEFAULT_CSP.into(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            connect_timeout_secs: 5,
            auto_migrate: true,
            pg_bin_dir: None,
            embedded_user: "postgres".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_secret_file: None,
            issuer: "chatd".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            pbkdf2_iterations: 600_000,
            hash_workers: 0,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            heartbeat_secs: 30,
            max_frame_bytes: 64 * 1024,
            outbound_queue: 1024,
            max_subscriptions: 500,
            typing_interval_ms: 2000,
            presence_max_members: 1000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            messages_per_sec: 10,
            message_burst: 30,
            login_attempts_per_ip_per_min: 30,
            login_free_failures: 5,
            login_max_backoff_secs: 900,
            registrations_per_ip_per_hour: 20,
            ws_connections_per_user: 20,
            ws_connections_per_ip: 200,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// A configuration problem, always naming the key (or file) at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn key(key: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("{key}: {problem}"))
    }
}

impl Config {
    /// Loads defaults < file < environment. `file` is `--config`; when `None`, `./config.toml`
    /// is read if it exists. Flags are applied by the caller afterwards, then `validate`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed("CHATD_"))
    }

    /// Defaults < the TOML text of a config file, without the environment: the file layer of
    /// `load`, for callers (and the fuzzer, fuzz/) that hold the text rather than a path.
    /// Like `load`, it does not `validate`.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Self::defaults().merge(Toml::string(text)))
    }

    fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        figment.extract().map_err(describe_figment_error)
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Self::defaults();
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!("config file {} does not exist", path.display())));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        // Only `CHATD_SECTION__KEY` variables are configuration; others such as
        // `CHATD_CONFIG` or `CHATD_TEST_DATABASE_URL` belong to the CLI or the test harness.
        // Text keys are taken verbatim: figment would read an all-digit secret as a number.
        let env = env
            .filter(|k| k.as_str().contains("__") && !TEXT_KEYS.contains(&dotted(k.as_str()).as_str()))
            .split("__");
        figment = figment.merge(env);
        // Matched without regard to case, as figment matches the other variables.
        for (var, value) in std::env::vars_os() {
            let Some(name) = var.to_str() else { continue };
            let Some(rest) = name
                .get(..6)
                .filter(|p| p.eq_ignore_ascii_case("CHATD_"))
                .map(|_| &name[6..])
            else {
                continue;
            };
            let Some(key) = TEXT_KEYS.iter().find(|k| **k == dotted(rest)) else {
                continue;
            };
            let Some(value) = value.to_str() else {
                return Err(ConfigError::key(key, format!("{name} is not valid UTF-8")));
            };
            figment = figment.merge(Serialized::default(key, value));
        }
        Self::extract(figment)
    }

    /// Semantic checks that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = self.database.url.as_deref().filter(|u| !u.is_empty()) {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| ConfigError::key("database.url", format!("not a PostgreSQL URL ({e})")))?;
        }
        if self.server.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key("server.data_dir", "must not be empty"));
        }
        if !(1..=1000).contains(&self.database.pool_size) {
            return Err(ConfigError::key("database.pool_size", "must be between 1 and 1000"));
        }
        if !(1..=3600).contains(&self.database.connect_timeout_secs) {
            return Err(ConfigError::key(
                "database.connect_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        // Only embedded mode runs the server binaries; they run from `/`, so the path must
        // not depend on the directory chatd was started in.
        if let Some(dir) = self
            .database
            .pg_bin_dir
            .as_ref()
            .filter(|_| self.database_url().is_none())
        {
            if dir.is_relative() {
                return Err(ConfigError::key(
                    "database.pg_bin_dir",
                    format!("{} must be an absolute path", dir.display()),
                ));
            }
            let missing: Vec<&str> = ["initdb", "pg_ctl", "postgres"]
                .into_iter()
                .filter(|b| !dir.join(b).is_file())
                .collect();
            if !missing.is_empty() {
                return Err(ConfigError::key(
                    "database.pg_bin_dir",
                    format!("{} has no {}", dir.display(), missing.join(", ")),
                ));
            }
        }
        if self.database.embedded_user.is_empty() {
            return Err(ConfigError::key("database.embedded_user", "must not be empty"));
        }
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError::key(
                    "auth.jwt_secret",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                ));
            }
        }
        if self.auth.issuer.is_empty() {
            return Err(ConfigError::key("auth.issuer", "must not be empty"));
        }
        if !(10..=24 * 3600).contains(&self.auth.access_token_ttl_secs) {
            return Err(ConfigError::key(
                "auth.access_token_ttl_secs",
                "must be between 10 and 86400",
            ));
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return Err(ConfigError::key(
                "auth.refresh_token_ttl_secs",
                "must not be shorter than auth.access_token_ttl_secs",
            ));
        }
        if self.auth.refresh_token_ttl_secs > MAX_REFRESH_TOKEN_TTL_SECS {
            return Err(ConfigError::key(
                "auth.refresh_token_ttl_secs",
                format!("must be at most {MAX_REFRESH_TOKEN_TTL_SECS} (365 days)"),
            ));
        }
        if !(1_000..=10_000_000).contains(&self.auth.pbkdf2_iterations) {
            return Err(ConfigError::key(
                "auth.pbkdf2_iterations",
                "must be between 1000 and 10000000",
            ));
        }
        if self.auth.hash_workers > 256 {
            return Err(ConfigError::key("auth.hash_workers", "must be at most 256"));
        }
        if !(256..=64 * 1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err(ConfigError::key(
                "server.max_body_bytes",
                "must be between 256 and 67108864",
            ));
        }
        if !(1..=3600).contains(&self.ws.heartbeat_secs) {
            return Err(ConfigError::key("ws.heartbeat_secs", "must be between 1 and 3600"));
        }
        // A longest message body (4,000 four-byte characters) with room for the frame around it.
        if !(32 * 1024..=16 * 1024 * 1024).contains(&self.ws.max_frame_bytes) {
            return Err(ConfigError::key(
                "ws.max_frame_bytes",
                "must be between 32768 and 16777216",
            ));
        }
        if !(16..=1_000_000).contains(&self.ws.outbound_queue) {
            return Err(ConfigError::key("ws.outbound_queue", "must be between 16 and 1000000"));
        }
        if !(1..=100_000).contains(&self.ws.max_subscriptions) {
            return Err(ConfigError::key("ws.max_subscriptions", "must be between 1 and 100000"));
        }
        if self.ws.typing_interval_ms > 60_000 {
            return Err(ConfigError::key("ws.typing_interval_ms", "must be at most 60000"));
        }
        if self.ws.presence_max_members < 0 {
            return Err(ConfigError::key("ws.presence_max_members", "must not be negative"));
        }
        if self.limits.messages_per_sec > 1_000_000 {
            return Err(ConfigError::key("limits.messages_per_sec", "must be at most 1000000"));
        }
        if self.limits.messages_per_sec > 0 && !(1..=1_000_000).contains(&self.limits.message_burst) {
            return Err(ConfigError::key(
                "limits.message_burst",
                "must be between 1 and 1000000",
            ));
        }
        if self.limits.login_max_backoff_secs == 0 || self.limits.login_max_backoff_secs > 86_400 {
            return Err(ConfigError::key(
                "limits.login_max_backoff_secs",
                "must be between 1 and 86400",
            ));
        }
        for (key, secs) in [
            ("server.header_read_timeout_secs", self.server.header_read_timeout_secs),
            ("server.body_read_timeout_secs", self.server.body_read_timeout_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(ConfigError::key(key, "must be between 1 and 3600"));
            }
        }
        self.trusted_proxies()?;
        for origin in &self.server.cors_allowed_origins {
            // Exactly what a browser sends in `Origin`: scheme://host[:port], nothing more.
            let canonical = url::Url::parse(origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.origin().ascii_serialization());
            if canonical.as_deref() != Some(origin.as_str()) {
                return Err(ConfigError::key(
                    "server.cors_allowed_origins",
                    format!("'{origin}' is not an origin like https://chat.example.com (scheme, host, optional port)"),
                ));
            }
        }
        if self.server.hsts_max_age_secs > 2 * 365 * 24 * 3600 {
            return Err(ConfigError::key(
                "server.hsts_max_age_secs",
                "must be at most 63072000 (two years)",
            ));
        }
        if warp::http::HeaderValue::from_str(&self.server.content_security_policy).is_err() {
            return Err(ConfigError::key(
                "server.content_security_policy",
                "must be a valid header value (visible ASCII)",
            ));
        }
        if !(1..=300).contains(&self.cluster.heartbeat_secs) {
            return Err(ConfigError::key("cluster.heartbeat_secs", "must be between 1 and 300"));
        }
        if self.cluster.node_timeout_secs < 2 * self.cluster.heartbeat_secs || self.cluster.node_timeout_secs > 3600 {
            return Err(ConfigError::key(
                "cluster.node_timeout_secs",
                "must be at least twice cluster.heartbeat_secs and at most 3600",
            ));
        }
        if let Some(advertised) = &self.cluster.advertise_url {
            let ok =
                url::Url::parse(advertised).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(ConfigError::key(
                    "cluster.advertise_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::key("log.level", format!("not a valid filter ({e})")))?;
        Ok(())
    }

    /// The database URL, if one is configured (an empty string means embedded mode).
    pub fn database_url(&self) -> Option<&str> {
        self.database.url.as_deref().filter(|u| !u.trim().is_empty())
    }

    /// `server.trusted_proxies` as networks (a bare address is a network of one).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::key(
                            "server.trusted_proxies",
                            format!("'{p}' is not an IP address or CIDR block"),
                        )
                    })
            })
            .collect()
    }

    /// Threads allowed to hash passwords concurrently.
    pub fn hash_workers(&self) -> usize {
        match self.auth.hash_workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        }
    }
}

/// Figment reports the key path and the source; squeeze that into one line.
fn describe_figment_error(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        "config".to_string()
    } else {
        err.path.join(".")
    };
    let source = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(src) => format!(" (from {src})"),
            // Name the exact variable rather than figment's "`CHATD_` environment variable(s)".
            None if m.name.contains("environment") && !err.path.is_empty() => {
                // An unknown section (`CHATD_FOO__BAR`) is reported at `foo`: name the
                // variable actually set.
                let name = format!("CHATD_{}", err.path.join("__").to_uppercase());
                let nested = format!("{name}__");
                let set = std::env::vars_os()
                    .filter_map(|(k, _)| k.into_string().ok())
                    .find(|k| *k == name || k.starts_with(&nested));
                format!(" (from environment variable {})", set.unwrap_or(name))
            }
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    // TOML parse errors come with a multi-line caret diagram; keep only the prose lines.
    let kind = err.kind.to_string();
    let kind = kind
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|'))
        .collect::<Vec<_>>()
        .join(": ")
        // figment quotes serde's already-quoted list: "expected `one of `a`, `b``".
        .replace("expected `one of ", "expected one of ")
        .replace("``", "`");
    ConfigError(format!("{key}: {kind}{source}"))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn repo_config_toml_matches_defaults() {
        // config.toml documents every key with its default value; if it drifts this fails.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let from_file: Config = Figment::from(Toml::file_exact(&path)).extract().unwrap();
        assert_eq!(from_file, Config::default());
    }

    #[test]
    fn toml_text_loads_over_the_defaults_and_errors_stay_on_one_line() {
        let c = Config::from_toml_str("[ws]\nheartbeat_secs = 7\n").unwrap();
        assert_eq!(c.ws.heartbeat_secs, 7);
        assert_eq!(c.server, Config::default().server);
        let err = Config::from_toml_str("[ws]\nheartbeat_secs = \n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
        let err = Config::from_toml_str("[ws]\nhearbeat_secs = 7\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hearbeat_secs"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_reports_bad_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[server]\nbind = \"127.0.0.1:9000\"\n[auth]\nissuer = \"file\"\n",
            )?;
            jail.set_env("CHATD_AUTH__ISSUER", "env");
            jail.set_env("CHATD_TEST_DATABASE_URL", "ignored");
            let c = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(c.server.bind.port(), 9000);
            assert_eq!(c.auth.issuer, "env");

            jail.set_env("CHATD_SERVER__BIND", "not-an-address");
            let err = Config::load(Some(Path::new("c.toml"))).unwrap_err().to_string();
            assert!(err.contains("server.bind"), "{err}");
            assert!(err.contains("CHATD_SERVER__BIND"), "{err}");
            assert!(!err.contains('\n'));
            Ok(())
        });
    }

    #[test]
    fn an_unknown_section_in_the_environment_names_the_variable_set() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHATD_FOO__BAR", "1");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("CHATD_FOO__BAR"), "{err}");
            assert!(!err.contains("``"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[server]\nbnid = \"127.0.0.1:9000\"\n")?;
            let err = Config::load(Some(Path::new("c.toml"))).unwrap_err().to_string();
            assert!(err.contains("bnid"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_from_the_environment_stay_strings() {
        // Env values are parsed as TOML-ish values; an all-digit or float-looking secret must
        // arrive exactly as written, not as a number turned back into different text.
        for secret in [
            "12345678901234567890123456789012345",
            "1234567890123456789012345678901.5e3",
            "true",
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("CHATD_AUTH__JWT_SECRET", secret);
                let c = Config::load(None);
                match secret.len() >= MIN_JWT_SECRET_BYTES {
                    true => assert_eq!(c.unwrap().auth.jwt_secret.as_deref(), Some(secret)),
                    false => assert!(c.is_err() || c.unwrap().validate().is_err()),
                }
                Ok(())
            });
        }
    }

    #[test]
    fn an_empty_data_dir_is_a_configuration_error() {
        let mut c = Config::default();
        c.server.data_dir = "".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("server.data_dir") && err.contains("empty"), "{err}");
    }

    #[test]
    fn pg_bin_dir_must_hold_the_server_binaries() {
        let mut c = Config::default();
        c.database.pg_bin_dir = Some("/nonexistent/bin".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("database.pg_bin_dir"), "{err}");
        c.database.pg_bin_dir = Some("relative/bin".into());
        assert!(c.validate().unwrap_err().to_string().contains("absolute"));
        // With an external database the embedded binaries are never run.
        c.database.url = Some("postgres://chatd@db.internal/chatd".into());
        c.validate().unwrap();
    }

    #[test]
    fn text_variables_match_without_regard_to_case_like_the_others() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("chatd_auth__issuer", "lower-case-issuer");
            assert_eq!(Config::load(None).unwrap().auth.issuer, "lower-case-issuer");
            Ok(())
        });
    }

    #[test]
    fn short_secret_is_rejected() {
        let mut c = Config::default();
        c.auth.jwt_secret = Some("short".into());
        assert!(c.validate().unwrap_err().to_string().contains("auth.jwt_secret"));
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        for (ttl, ok) in [
            (u64::MAX, false),
            (MAX_REFRESH_TOKEN_TTL_SECS + 1, false),
            (MAX_REFRESH_TOKEN_TTL_SECS, true),
        ] {
            let mut c = Config::default();
            c.auth.refresh_token_ttl_secs = ttl;
            match c.validate() {
                Ok(()) => assert!(ok, "{ttl} accepted"),
                Err(e) => {
                    assert!(!ok, "{ttl} refused: {e}");
                    assert!(e.to_string().contains("auth.refresh_token_ttl_secs"), "{e}");
                }
            }
        }
        let mut c = Config::default();
        c.auth.access_token_ttl_secs = u64::MAX;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("auth.access_token_ttl_secs"));
    }

    #[test]
    fn cluster_settings_come_from_the_environment_and_are_bounded() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHATD_CLUSTER__BUS", "postgres");
            let c = Config::load(None).unwrap();
            assert_eq!(c.cluster.bus, BusKind::Postgres);
            jail.set_env("CHATD_CLUSTER__BUS", "nats");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(
                err.contains("cluster.bus") && err.contains("CHATD_CLUSTER__BUS"),
                "{err}"
            );
            Ok(())
        });
        for (heartbeat, timeout, ok) in [
            (5, 20, true),
            (5, 10, true),
            (5, 9, false),
            (0, 20, false),
            (1, 3601, false),
        ] {
            let mut c = Config::default();
            c.cluster.heartbeat_secs = heartbeat;
            c.cluster.node_timeout_secs = timeout;
            match c.validate() {
                Ok(()) => assert!(ok, "{heartbeat}/{timeout} accepted"),
                Err(e) => {
                    assert!(!ok, "{heartbeat}/{timeout} refused: {e}");
                    assert!(e.to_string().contains("cluster."), "{e}");
                }
            }
        }
    }

    #[test]
    fn trusted_proxies_and_cors_origins_come_from_the_environment_and_are_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CHATD_SERVER__TRUSTED_PROXIES", r#"["10.0.0.0/8", "::1"]"#);
            jail.set_env("CHATD_LIMITS__REGISTRATIONS_PER_IP_PER_HOUR", "0");
            let c = Config::load(None).unwrap();
            c.validate().unwrap();
            let nets = c.trusted_proxies().unwrap();
            assert!(nets[0].contains(&"10.9.8.7".parse::<std::net::IpAddr>().unwrap()));
            assert!(nets[1].contains(&"::1".parse::<std::net::IpAddr>().unwrap()));
            assert_eq!(c.limits.registrations_per_ip_per_hour, 0);
            Ok(())
        });
        let refused = |tweak: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            tweak(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(
            refused(&|c| c.server.trusted_proxies = vec!["proxy.internal".into()]).contains("server.trusted_proxies")
        );
        for bad in [
            "chat.example.com",
            "https://chat.example.com/",
            "https://chat.example.com/app",
            "ftp://x.example",
        ] {
            let e = refused(&|c| c.server.cors_allowed_origins = vec![bad.into()]);
            assert!(e.contains("server.cors_allowed_origins"), "{bad}: {e}");
        }
        let mut c = Config::default();
        c.server.cors_allowed_origins = vec!["https://chat.example.com".into(), "http://localhost:5173".into()];
        c.validate().unwrap();
        assert!(refused(&|c| c.server.header_read_timeout_secs = 0).contains("server.header_read_timeout_secs"));
        assert!(refused(&|c| c.limits.login_max_backoff_secs = 0).contains("limits.login_max_backoff_secs"));
        assert!(refused(&|c| c.server.content_security_policy = "a\nb".into()).contains("content_security_policy"));
    }
}
