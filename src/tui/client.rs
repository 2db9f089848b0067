//! The admin API, as `chatd tui` uses it: the live stream (`/api/v1/admin/stream`, one
//! WebSocket, reopened by itself with exponential back-off whenever it drops) and the actions
//! (REST). The wire types are `crate::admin::types`, shared with the server.
//!
//! Tokens are short-lived (an operator token 5 minutes, a user's access token 15), so the
//! client never assumes one still works: the stream asks for a fresh one on every reconnect
//! (minting an operator token is free; a user's is reused until the server refuses it, since
//! a login costs the server a password hash), and a REST call answered 401 gets a new token
//! and is tried once more. The password stays in memory for the session and is never logged.
//!
//! A refusal is not an outage: a 403 (not an administrator), a login the server rejects (a
//! wrong password) or a 401 that a fresh token did not cure (a token signed with another
//! secret) will be answered the same way every time, so the stream stops on it instead of
//! retrying. Retrying a wrong password would look like password guessing, and costs the
//! server a password hash each time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use url::Url;
use uuid::Uuid;

use super::app::{Action, StreamEvent, CLOSE_REASON};
use crate::admin::types::{CloseRequest, Snapshot, Stats, StreamFrame};
use crate::config::Config;

/// The first wait before reconnecting; it doubles on each failure, up to `BACKOFF_MAX`.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a REST call or a handshake may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stream asks the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub interval_ms: u64,
    /// At most this many rooms (the busiest) and connections per snapshot.
    pub rooms: u32,
    pub connections: u32,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            rooms: 200,
            connections: 500,
        }
    }
}

impl StreamOptions {
    /// A stream that sent nothing for this long is dead, even if TCP has not noticed.
    fn silence_limit(&self) -> Duration {
        Duration::from_millis(self.interval_ms.saturating_mul(3)).max(Duration::from_secs(5))
    }
}

/// A password held for re-login; its `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Who the console acts as.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Operator tokens minted from the configured signing secret.
    Operator(Arc<Config>),
    /// An administrator's account, signed in with its password.
    Login { username: String, password: Secret },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No token could be had: no secret here, or the server refused the login.
    #[error("{0}")]
    Auth(String),
    /// The server answered with an error.
    #[error("{code}: {message} (HTTP {status})")]
    Api { status: u16, code: String, message: String },
    /// The server could not be reached, or answered something unreadable.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    fn is_unauthorized(&self) -> bool {
        matches!(self, ClientError::Api { status: 401, .. })
    }

    /// Whether asking again would get the same answer: no token can be had, or the server
    /// refuses this account or token. (A 401 reaches the caller only after a fresh token was
    /// refused too.) Network failures and 5xx are not refusals: they may pass.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Auth(_) | ClientError::Api { status: 401 | 403, .. })
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct LoginReply {
    access_token: String,
}

/// A client of one server's admin API.
pub struct AdminClient {
    base: Url,
    http: reqwest::Client,
    auth: Auth,
    /// The last token obtained. Never held across an `.await`.
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl AdminClient {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str, auth: Auth) -> Result<Self, ClientError> {
        let base = Url::parse(base).map_err(|e| ClientError::Transport(format!("invalid URL {base}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(ClientError::Transport(format!(
                "invalid URL {base}: expected http://host:port"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            auth,
            token: Mutex::new(None),
        })
    }

    /// The server, as given.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Transport(format!("invalid path {path}: {e}")))
    }

    fn cached_token(&self) -> Option<String> {
        self.token.lock().ok().and_then(|t| t.clone())
    }

    /// A token: the cached one unless `fresh`; a new one otherwise.
    async fn token(&self, fresh: bool) -> Result<String, ClientError> {
        if !fresh {
            if let Some(token) = self.cached_token() {
                return Ok(token);
            }
        }
        let token = match &self.auth {
            Auth::Operator(config) => {
                crate::auth::tokens::operator_token(config).map_err(|e| ClientError::Auth(format!("{e:#}")))?
            }
            Auth::Login { username, password } => self.login(username, password).await?,
        };
        if let Ok(mut cached) = self.token.lock() {
            *cached = Some(token.clone());
        }
        Ok(token)
    }

    async fn login(&self, username: &str, password: &Secret) -> Result<String, ClientError> {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login")?)
            .json(&serde_json::json!({"username": username, "password": password.0}))
            .send()
            .await
            .map_err(transport)?;
        let response = match check(response).await {
            Ok(r) => r,
            // Rate limited or a server error: worth another try later.
            Err(
                e @ ClientError::Api {
                    status: 429 | 500.., ..
                },
            ) => return Err(e),
            Err(ClientError::Api { code, message, .. }) => {
                return Err(ClientError::Auth(format!(
                    "cannot sign in as {username}: {code}: {message}"
                )))
            }
            Err(e) => return Err(e),
        };
        let reply: LoginReply = response.json().await.map_err(transport)?;
        Ok(reply.access_token)
    }

    /// Sends a request with a token; on 401, once more with a new one.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.url(path)?;
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport)?;
            match check(response).await {
                Err(e) if e.is_unauthorized() && !fresh => fresh = true,
                other => return other,
            }
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.send(reqwest::Method::GET, path, None).await?;
        response.json().await.map_err(transport)
    }

    pub async fn stats(&self) -> Result<Stats, ClientError> {
        self.get("/api/v1/admin/stats").await
    }

    /// One admin call, to learn before the console starts whether it can get in at all.
    pub async fn check_access(&self) -> Result<(), ClientError> {
        self.stats().await.map(drop)
    }

    /// Closes connection `id` of node `node` (whichever node this console talks to).
    pub async fn close_connection(&self, id: u64, node: Uuid, reason: &str) -> Result<(), ClientError> {
        let body = serde_json::to_value(CloseRequest {
            reason: Some(reason.to_string()),
        })
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/connections/{id}?node={node}"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    pub async fn disable_user(&self, username: &str) -> Result<(), ClientError> {
        let path = format!("/api/v1/admin/users/{}/disable", path_segment(username));
        self.send(reqwest::Method::POST, &path, None).await.map(drop)
    }

    pub async fn archive_room(&self, id: Uuid) -> Result<(), ClientError> {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/admin/rooms/{id}/archive"),
            None,
        )
        .await
        .map(drop)
    }

    /// Carries out what the operator confirmed in the console.
    pub async fn perform(&self, action: &Action) -> Result<(), ClientError> {
        match action {
            Action::CloseConnection { id, node, .. } => self.close_connection(*id, *node, CLOSE_REASON).await,
            Action::DisableUser { username } => self.disable_user(username).await,
            Action::ArchiveRoom { id, .. } => self.archive_room(*id).await,
        }
    }

    fn stream_url(&self, options: &StreamOptions) -> Result<Url, ClientError> {
        let mut url = self.url("/api/v1/admin/stream")?;
        let scheme = if self.base.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| ClientError::Transport(format!("cannot make a WebSocket URL of {}", self.base)))?;
        url.query_pairs_mut()
            .append_pair("interval_ms", &options.interval_ms.to_string())
            .append_pair("rooms", &options.rooms.to_string())
            .append_pair("connections", &options.connections.to_string());
        Ok(url)
    }

    /// Opens the stream once: with a new token for an operator, the cached one for a user
    /// (and a new one if the server refuses it).
    async fn open_stream(&self, options: &StreamOptions) -> Result<Ws, ClientError> {
        let url = self.stream_url(options)?;
        let mut fresh = matches!(self.auth, Auth::Operator(_));
        loop {
            let token = self.token(fresh).await?;
            let mut request = url
                .as_str()
                .into_client_request()
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| ClientError::Auth("the token is not a valid header value".into()))?;
            request.headers_mut().insert("authorization", value);
            let attempt = tokio::time::timeout(REQUEST_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
            match attempt {
                Err(_) => return Err(ClientError::Transport("timed out".into())),
                Ok(Ok((ws, _))) => return Ok(ws),
                Ok(Err(e)) => {
                    let e = handshake_error(e);
                    if e.is_unauthorized() && !fresh {
                        fresh = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// One snapshot, from a stream opened for it: for scripts and tests.
    pub async fn snapshot(&self, options: &StreamOptions) -> Result<Snapshot, ClientError> {
        let mut ws = self.open_stream(options).await?;
        match next_snapshot(&mut ws, options.silence_limit()).await {
            Ok(snapshot) => Ok(snapshot),
            Err(reason) => Err(ClientError::Transport(reason)),
        }
    }

    /// Feeds `events` with snapshots as they come, reconnecting with back-off whenever the
    /// stream drops, until `events` is closed (the console quit) or the server refuses us
    /// (`StreamEvent::Refused`, the last event).
    pub async fn run_stream(self: Arc<Self>, options: StreamOptions, events: mpsc::Sender<StreamEvent>) {
        let mut backoff = BACKOFF_START;
        loop {
            let reason = match self.open_stream(&options).await {
                Err(e) if e.is_refusal() => {
                    let _ = events.send(StreamEvent::Refused { reason: e.to_string() }).await;
                    return;
                }
                Err(e) => e.to_string(),
                Ok(mut ws) => loop {
                    match next_snapshot(&mut ws, options.silence_limit()).await {
                        Ok(snapshot) => {
                            // Back at full speed once the server delivers again.
                            backoff = BACKOFF_START;
                            if events.send(StreamEvent::Snapshot(Box::new(snapshot))).await.is_err() {
                                return;
                            }
                        }
                        Err(reason) => break reason,
                    }
                },
            };
            let event = StreamEvent::Disconnected {
                reason,
                retry_in: backoff,
            };
            if events.send(event).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = events.closed() => return,
            }
            backoff = next_backoff(backoff);
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The wait after `current`: doubled, capped.
pub fn next_backoff(current: Duration) -> Duration {
    current.saturating_mul(2).min(BACKOFF_MAX)
}

/// Reads frames until a snapshot; `Err` says why the stream is over.
async fn next_snapshot(ws: &mut Ws, silence_limit: Duration) -> Result<Snapshot, String> {
    loop {
        let frame = match tokio::time::timeout(silence_limit, ws.next()).await {
            Err(_) => return Err(format!("no data for {}s", silence_limit.as_secs())),
            Ok(None) => return Err("the server ended the stream".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => match serde_json::from_str::<StreamFrame>(text.as_str()) {
                Ok(StreamFrame::Snapshot(snapshot)) => return Ok(snapshot),
                // A frame type a newer server added: not ours to understand.
                Err(_) => continue,
            },
            Message::Close(Some(close)) if !close.reason.is_empty() => {
                return Err(format!("closed by the server: {}", close.reason))
            }
            Message::Close(_) => return Err("closed by the server".into()),
            _ => continue,
        }
    }
}

fn transport(e: reqwest::Error) -> ClientError {
    let mut message = e.to_string();
    // reqwest's own message is "error sending request for url (…)"; the cause says why.
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    ClientError::Transport(message)
}

/// The response if it is a success; the server's `{"error":{…}}` as an error otherwise.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    Err(api_error(status.as_u16(), text.as_bytes()))
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => ClientError::Api {
            status,
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: format!("http_{status}"),
            message: "the server answered without an error body".into(),
        },
    }
}

fn handshake_error(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(response) => api_error(
            response.status().as_u16(),
            response.body().as_deref().unwrap_or_default(),
        ),
        E::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            ClientError::Transport("connection refused".into())
        }
        other => ClientError::Transport(other.to_string()),
    }
}

/// `username` as one URL path segment.
fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_five_seconds() {
        let mut waits = vec![BACKOFF_START];
        for _ in 0..6 {
            waits.push(next_backoff(*waits.last().unwrap()));
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn the_stream_url_is_the_websocket_twin_of_the_base() {
        let c = AdminClient::new(
            "http://127.0.0.1:8080",
            Auth::Login {
                username: "a".into(),
                password: Secret::new("p".into()),
            },
        )
        .unwrap();
        assert_eq!(
            c.stream_url(&StreamOptions::default()).unwrap().as_str(),
            "ws://127.0.0.1:8080/api/v1/admin/stream?interval_ms=1000&rooms=200&connections=500"
        );
        assert!(AdminClient::new("ftp://x", Auth::Operator(Arc::new(Config::default()))).is_err());
        assert!(AdminClient::new("not a url", Auth::Operator(Arc::new(Config::default()))).is_err());
    }

    #[test]
    fn error_bodies_become_codes() {
        let e = api_error(403, br#"{"error":{"code":"forbidden","message":"admins only"}}"#);
        assert_eq!(e.to_string(), "forbidden: admins only (HTTP 403)");
        assert!(api_error(401, b"").is_unauthorized());
        assert!(e.is_refusal() && api_error(401, b"").is_refusal());
        assert!(ClientError::Auth("no secret".into()).is_refusal());
        assert!(!api_error(503, b"").is_refusal() && !api_error(429, b"").is_refusal());
        assert!(!ClientError::Transport("connection refused".into()).is_refusal());
        assert!(format!("{:?}", Secret::new("hunter2".into())).find("hunter2").is_none());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_and_retried() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = Config::default();
        config.auth.jwt_secret = Some("x".repeat(40));
        let client =
            Arc::new(AdminClient::new(&format!("http://127.0.0.1:{port}"), Auth::Operator(Arc::new(config))).unwrap());
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(client.run_stream(StreamOptions::default(), tx));
        let mut retries = Vec::new();
        for _ in 0..2 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(StreamEvent::Disconnected { reason, retry_in })) => {
                    assert_eq!(reason, "connection refused");
                    retries.push(retry_in);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(retries, [BACKOFF_START, BACKOFF_START * 2]);
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends when the console is gone")
            .unwrap();
    }
}
