//! The test harness: a real PostgreSQL, a real server on port 0, a real HTTP client.
//!
//! With `CHATD_TEST_DATABASE_URL` set, tests use that server; otherwise each test process
//! starts one throwaway cluster (in /dev/shm when possible) with the same embedded-mode code
//! chatd itself uses, and stops it at exit. Either way every test gets its own database,
//! cloned from a template that was migrated once per process, and drops it when done.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use std::time::Instant;

use chatd::app::Application;
use chatd::config::Config;
use chatd::db::embedded::{Embedded, EmbeddedOptions};
use chatd::db::{migrate, Db};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How to reach the PostgreSQL server the tests use.
struct Server {
    /// Connection settings with dbname left to fill in.
    base: tokio_postgres::Config,
    /// The same, as a URL template for child processes: `{db}` is replaced by the name.
    url_template: String,
    template_db: String,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();
static CLUSTER: OnceLock<Embedded> = OnceLock::new();

/// Runs at process exit: drops the template database and stops this process's cluster.
extern "C" fn clean_up_at_exit() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return;
    };
    if let Some(server) = SERVER.get() {
        let (base, template) = (server.base.clone(), server.template_db.clone());
        rt.block_on(async move {
            if let Ok((client, conn)) = base.connect(tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
                    .await;
            }
        });
    }
    if let Some(cluster) = CLUSTER.get() {
        let _ = rt.block_on(cluster.stop());
        if let Some(dir) = cluster.pgdata().parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn scratch_root() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir()
        && std::fs::metadata(&shm)
            .map(|m| !m.permissions().readonly())
            .unwrap_or(false)
    {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// Removes clusters left behind by test processes that died without running their exit hook.
fn sweep_dead_clusters(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("chatd-test-").and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(e.path().join("postgres/postmaster.pid")) {
            if let Some(pm) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pm), nix::sys::signal::Signal::SIGQUIT);
            }
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
}

async fn connect(cfg: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    client
}

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let (base, url_template) = match std::env::var("CHATD_TEST_DATABASE_URL") {
                Ok(url) if !url.is_empty() => {
                    let mut u = url::Url::parse(&url).expect("CHATD_TEST_DATABASE_URL is a URL");
                    u.set_path("/DBNAME");
                    let template = u.to_string().replace("DBNAME", "{db}");
                    (
                        tokio_postgres::Config::from_str(&url).expect("CHATD_TEST_DATABASE_URL"),
                        template,
                    )
                }
                _ => {
                    let root = scratch_root();
                    sweep_dead_clusters(&root);
                    let cluster = Embedded::prepare(&EmbeddedOptions {
                        data_dir: root.join(format!("chatd-test-{}", std::process::id())),
                        bin_dir: None,
                        run_as_user: "postgres".into(),
                        durable: false,
                    })
                    .await
                    .expect("start a throwaway PostgreSQL cluster (are the PostgreSQL server binaries installed?)");
                    cluster.start().await.expect("start the test cluster");
                    let base = cluster.connect_config("postgres");
                    let host = match &base.get_hosts()[0] {
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    };
                    let template = format!("host={host} port=5432 user=postgres dbname={{db}}");
                    CLUSTER.set(cluster).expect("one cluster per process");
                    (base, template)
                }
            };
            // Migrate a template once; each test clones it (≈ 20 ms) instead of migrating.
            let template_db = format!("chatd_tmpl_{}_{}", std::process::id(), Uuid::new_v4().simple());
            let admin = connect(&base).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {template_db}"))
                .await
                .expect("create template");
            {
                let mut cfg = base.clone();
                cfg.dbname(&template_db);
                let (mut client, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("connect template");
                let task = tokio::spawn(conn);
                migrate::run(&mut client, &migrate::embedded().unwrap())
                    .await
                    .expect("migrate template");
                drop(client);
                let _ = task.await;
            }
            // SAFETY: registers a plain `extern "C" fn` with no arguments, as atexit requires.
            unsafe { libc::atexit(clean_up_at_exit) };
            Server {
                base,
                url_template,
                template_db,
            }
        })
        .await
}

/// A fresh, migrated database of its own; dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub config: tokio_postgres::Config,
    /// A connection string for child processes (`CHATD_DATABASE__URL`).
    pub url: String,
    /// Where to drop it from; `None` for a database this harness does not own.
    admin: Option<tokio_postgres::Config>,
}

impl TestDb {
    pub async fn new() -> Self {
        let server = server().await;
        Self::create("t", Some(&server.template_db)).await
    }

    /// An empty database (no migrations), for migration tests.
    pub async fn empty() -> Self {
        Self::create("e", None).await
    }

    async fn create(prefix: &str, template: Option<&str>) -> Self {
        let server = server().await;
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        connect(&server.base)
            .await
            .batch_execute(&sql)
            .await
            .expect("create test database");
        let mut config = server.base.clone();
        config.dbname(&name);
        let url = server.url_template.replace("{db}", &name);
        Self {
            name,
            config,
            url,
            admin: Some(server.base.clone()),
        }
    }

    /// A database on a server the test runs itself (a cluster it stops and starts); left
    /// alone when dropped.
    pub fn external(config: tokio_postgres::Config, url: String) -> Self {
        Self {
            name: config.get_dbname().unwrap_or_default().to_owned(),
            config,
            url,
            admin: None,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.config).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin) = self.admin.clone() else {
            return;
        };
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the blocking work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = admin.connect(tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A config for tests: cheap hashing, a fixed secret, port 0, a private data dir.
pub fn test_config(data_dir: PathBuf) -> Config {
    let mut c = Config::default();
    c.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    c.server.data_dir = data_dir;
    c.auth.pbkdf2_iterations = 1_000;
    c.auth.jwt_secret = Some("test-secret-test-secret-test-secret-0123".into());
    c.database.pool_size = 4;
    // Tests send faster than any person; the rate limit has tests of its own.
    c.limits.messages_per_sec = 0;
    // Likewise the login, registration and connection limits (tests/api/limits.rs has theirs):
    // every test client comes from 127.0.0.1.
    c.limits.login_attempts_per_ip_per_min = 0;
    c.limits.login_free_failures = 1_000;
    c.limits.registrations_per_ip_per_hour = 0;
    c.limits.ws_connections_per_user = 0;
    c.limits.ws_connections_per_ip = 0;
    c.log.level = "warn".into();
    c
}

/// The tests' HTTP client, connecting from `local` (a loopback address) when given.
fn http_client(local: Option<std::net::IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .local_address(local)
        .build()
        .unwrap()
}

/// A running chatd on loopback with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Shared by the nodes of one cluster (`spawn_node`); dropped with the last of them.
    pub db: Arc<TestDb>,
    pub config: Arc<Config>,
    /// Where `/metrics` is served when `server.metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(Arc::new(TestDb::new().await), tweak).await
    }

    /// Another node of this app's cluster: the same database, `cluster.bus = "postgres"`
    /// (which the first node needs as well), its own address.
    pub async fn spawn_node(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(self.db.clone(), |c| {
            c.cluster.bus = chatd::config::BusKind::Postgres;
            tweak(c)
        })
        .await
    }

    /// A server on `db` (which may be shared with other servers).
    pub async fn spawn_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = scratch_dir();
        let mut config = test_config(data_dir.path().to_path_buf());
        tweak(&mut config);
        config.validate().expect("test config is valid");
        let config = Arc::new(config);
        let pool = Db::new(
            db.config.clone(),
            config.database.pool_size,
            Duration::from_secs(config.database.connect_timeout_secs),
        );
        let app = Application::build(config.clone(), pool).await.expect("build app");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            metrics_addr,
            http: http_client(None),
            db,
            config,
            shutdown: Some(tx),
            _data_dir: data_dir,
        }
    }

    /// The same helpers for a server this test started otherwise (a child process) at `addr`,
    /// on `self`'s database.
    pub fn at(&self, addr: SocketAddr) -> Self {
        Self {
            addr,
            metrics_addr: None,
            http: self.http.clone(),
            db: self.db.clone(),
            config: self.config.clone(),
            shutdown: None,
            _data_dir: scratch_dir(),
        }
    }

    /// The same server, called from another loopback address (127.0.0.0/8 is all loopback):
    /// another client as far as per-address limits go.
    pub fn via_ip(&self, ip: &str) -> Self {
        Self {
            http: http_client(Some(ip.parse().expect("an IP address"))),
            ..self.at(self.addr)
        }
    }

    /// The same helpers for a server started otherwise (a child process) at `addr`, on `db`.
    pub fn over(addr: SocketAddr, db: Arc<TestDb>) -> Self {
        let data_dir = scratch_dir();
        Self {
            addr,
            metrics_addr: None,
            http: http_client(None),
            db,
            config: Arc::new(test_config(data_dir.path().to_path_buf())),
            shutdown: None,
            _data_dir: data_dir,
        }
    }

    /// Starts the server's graceful shutdown, as SIGTERM does.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// `call`, which must answer `status`; returns the body.
    pub async fn expect(
        &self,
        status: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (got, value) = self.call(method, path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// Sends `body` as it is, declared as JSON.
    pub async fn raw(&self, method: &str, path: &str, body: &'static str) -> (u16, Value) {
        self.raw_as(method, path, None, body).await
    }

    /// `raw`, signed in as `token`.
    pub async fn raw_as(&self, method: &str, path: &str, token: Option<&str>, body: &'static str) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Registers `username` with `password`; returns the response body (user + tokens).
    pub async fn register(&self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 201, "register {username}: {body}");
        body
    }

    /// `GET /api/v1/users/me` with `token`.
    pub async fn me(&self, token: &str) -> (u16, Value) {
        self.call("GET", "/api/v1/users/me", Some(token), None).await
    }

    /// `POST /api/v1/auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }
}

impl TestApp {
    /// Registers `username` (password `password123`) and returns an access token.
    pub async fn user(&self, username: &str) -> String {
        token(&self.register(username, "password123").await, "access_token")
    }

    /// Creates a room as `token`'s user; returns its id.
    /// Marks `username`'s account disabled (its sessions are left alone).
    pub async fn disable(&self, username: &str) {
        let n = self
            .db
            .client()
            .await
            .execute("UPDATE users SET disabled_at = now() WHERE username = $1", &[&username])
            .await
            .unwrap();
        assert_eq!(n, 1, "no user {username}");
    }

    pub async fn room(&self, token: &str, name: &str, visibility: &str) -> String {
        let (s, room) = self
            .call(
                "POST",
                "/api/v1/rooms",
                Some(token),
                Some(json!({"name": name, "visibility": visibility})),
            )
            .await;
        assert_eq!(s, 201, "create room {name}: {room}");
        room["id"].as_str().expect("room id").to_string()
    }

    /// Posts `body` to `room`; returns the stored message.
    pub async fn say(&self, token: &str, room: &str, body: &str) -> Value {
        let (s, m) = self
            .call(
                "POST",
                &format!("/api/v1/rooms/{room}/messages"),
                Some(token),
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(s, 201, "post to {room}: {m}");
        m
    }
}

/// The `error.code` of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

pub fn token(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_string()
}

/// A scratch directory under /dev/shm, removed on drop. World-searchable (0755) so that an
/// embedded cluster run as `postgres` (when tests run as root) can live inside it.
pub fn scratch_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::Builder::new()
        .prefix("chatd-scratch-")
        .tempdir_in(scratch_root())
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A WebSocket client speaking chatd's protocol, as an independent client would.
pub struct WsClient {
    pub stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The `hello` frame.
    pub hello: Value,
}

/// How long a test waits for a frame it expects.
pub const WS_WAIT: Duration = Duration::from_secs(15);

impl TestApp {
    /// Opens `/api/v1/ws` with `token` in the Authorization header and reads `hello`.
    pub async fn ws(&self, token: &str) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut req = format!("ws://{}/api/v1/ws", self.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("ws connect");
        let mut ws = WsClient {
            stream,
            hello: Value::Null,
        };
        ws.hello = ws.next_of("hello").await;
        ws
    }

    /// `ws`, over a socket with a small receive buffer: a client that stops reading is noticed
    /// after kilobytes, not the megabytes loopback buffers hold.
    pub async fn ws_small_buffer(&self, token: &str) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(self.addr).await.expect("tcp connect");
        let mut req = format!("ws://{}/api/v1/ws", self.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .expect("ws connect");
        let mut ws = WsClient {
            stream,
            hello: Value::Null,
        };
        ws.hello = ws.next_of("hello").await;
        ws
    }

    /// Opens `/api/v1/ws` from the loopback address `from`: the client with its `hello`, or
    /// the status and JSON body of the refusal.
    pub async fn ws_from(&self, token: &str, from: &str) -> Result<WsClient, (u16, Value)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().expect("an IP address"), 0))
            .unwrap();
        let tcp = socket.connect(self.addr).await.expect("tcp connect");
        let mut req = format!("ws://{}/api/v1/ws", self.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        match tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await {
            Ok((stream, _)) => {
                let mut ws = WsClient {
                    stream,
                    hello: Value::Null,
                };
                ws.hello = ws.next_of("hello").await;
                Ok(ws)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                let body = res.body().as_deref().unwrap_or_default();
                Err((
                    res.status().as_u16(),
                    serde_json::from_slice(body).unwrap_or(Value::Null),
                ))
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }

    /// The status and JSON body of a WebSocket handshake that is refused.
    pub async fn ws_refused(&self, path_and_query: &str, token: Option<&str>) -> (u16, Value) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut req = format!("ws://{}{path_and_query}", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok(_) => panic!("the handshake to {path_and_query} succeeded"),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                let body = res.body().as_deref().unwrap_or_default();
                (
                    res.status().as_u16(),
                    serde_json::from_slice(body).unwrap_or(Value::Null),
                )
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt as _;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .expect("ws send");
    }

    /// The next JSON frame (pings are answered by the library and skipped).
    pub async fn next(&mut self) -> Value {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let msg = tokio::time::timeout(WS_WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("the connection ended")
                .expect("ws read");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("a JSON frame"),
                Message::Close(c) => panic!("closed while waiting for a frame: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of `kind`, skipping others (presence, typing…).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Sends `frame` and returns the reply carrying its `id` (an `error` or the answer).
    pub async fn request(&mut self, mut frame: Value, id: &str) -> Value {
        frame["id"] = json!(id);
        self.send(frame).await;
        loop {
            let f = self.next().await;
            if f["id"] == id {
                return f;
            }
        }
    }

    /// Subscribes to `room` (from `since`, if given) and returns the `subscribed` frame.
    pub async fn subscribe(&mut self, room: &str, since: Option<i64>) -> Value {
        let mut frame = json!({"type": "subscribe", "room_id": room});
        if let Some(s) = since {
            frame["since_seq"] = json!(s);
        }
        let reply = self.request(frame, "sub").await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        reply
    }

    /// The next `count` messages of `room`: they must be seqs `from`, `from + 1`, … in order.
    pub async fn messages_from(&mut self, room: &str, from: i64, count: i64) -> Vec<Value> {
        let mut got = Vec::new();
        for seq in from..from + count {
            let m = self.next_of("message").await;
            assert_eq!(m["room_id"], room, "{m}");
            assert_eq!(m["seq"], seq, "in order, no gap, no repeat: {m}");
            got.push(m);
        }
        got
    }

    /// Nothing more is on its way: a ping's pong arrives with no message before it (one that
    /// was sent twice would be queued ahead of the pong).
    pub async fn nothing_more(&mut self) {
        self.send(json!({"type": "ping", "id": "last"})).await;
        loop {
            let f = self.next().await;
            assert_ne!(f["type"], "message", "an extra message: {f}");
            if f["type"] == "pong" {
                return;
            }
        }
    }

    /// The close code and reason the server ends with (skipping frames before it).
    pub async fn closed(&mut self) -> (u16, String) {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let next = tokio::time::timeout(WS_WAIT, self.stream.next())
                .await
                .expect("timed out waiting for the close");
            match next {
                Some(Ok(Message::Close(Some(c)))) => return (c.code.into(), c.reason.to_string()),
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the connection broke without a close frame: {e}"),
                None => panic!("the connection ended without a close frame"),
            }
        }
    }
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to `addr` as `token`, or `None` if the node does not answer.
pub async fn try_connect(addr: SocketAddr, token: &str) -> Option<Socket> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut req = format!("ws://{addr}/api/v1/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let connected = tokio::time::timeout(WS_WAIT, tokio_tungstenite::connect_async(req)).await;
    connected.ok()?.ok().map(|(s, _)| s)
}

/// The next JSON frame, or `None` once the connection is gone.
pub async fn next_frame(ws: &mut Socket) -> Option<Value> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(WS_WAIT, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

pub async fn send_frame(ws: &mut Socket, frame: Value) -> bool {
    use futures_util::SinkExt as _;
    ws.send(tokio_tungstenite::tungstenite::Message::text(frame.to_string()))
        .await
        .is_ok()
}

/// What the `writer`s of one test have been answered so far.
#[derive(Default)]
pub struct Tally {
    /// Acks received (a resent message acked again counts twice).
    pub acked: std::sync::atomic::AtomicUsize,
    /// Acks with `duplicate: true`: resends of a message that had been stored after all.
    pub duplicates: std::sync::atomic::AtomicUsize,
}

/// A client that sends `count` messages in bursts from node `nodes[start]`; when its node goes
/// away it moves to the next one (or, with one node, waits for it to come back) and sends
/// again every message not yet acked, with the same `client_msg_id`; no send may be refused.
/// Returns each message's body with its acked seq.
pub async fn writer(
    nodes: Vec<SocketAddr>,
    start: usize,
    token: String,
    room: String,
    name: String,
    count: usize,
    tally: Arc<Tally>,
) -> HashMap<String, i64> {
    let bodies: Vec<String> = (0..count).map(|i| format!("{name}-{i}")).collect();
    let mut acked: HashMap<String, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in start.. {
        assert!(Instant::now() < deadline, "the writer never finished");
        let Some(mut ws) = try_connect(nodes[i % nodes.len()], &token).await else {
            // Not listening (yet): a moment before the next node, or the same one again.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let todo: Vec<String> = bodies.iter().filter(|b| !acked.contains_key(*b)).cloned().collect();
        let mut broken = false;
        let take = |f: Value, acked: &mut HashMap<String, i64>| {
            assert_ne!(f["type"], "error", "{f}");
            if f["type"] == "ack" {
                let body = f["id"].as_str().unwrap().to_owned();
                let seq = f["message"]["seq"].as_i64().unwrap();
                if let Some(earlier) = acked.insert(body, seq) {
                    assert_eq!(earlier, seq, "one message, one seq: {f}");
                }
                tally.acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if f["duplicate"] == true {
                    tally.duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        };
        for burst in todo.chunks(10) {
            for body in burst {
                let frame = json!({"type": "send", "id": body, "room_id": room, "body": body, "client_msg_id": body});
                broken |= !send_frame(&mut ws, frame).await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
            // The acks that have arrived meanwhile.
            while let Some(Some(f)) = futures_util::FutureExt::now_or_never(next_frame(&mut ws)) {
                take(f, &mut acked);
            }
        }
        while !broken && acked.len() < count {
            let Some(f) = next_frame(&mut ws).await else { break };
            take(f, &mut acked);
        }
        if acked.len() == count {
            return acked;
        }
    }
    unreachable!()
}

/// `chatd serve` (the built binary) as a child process on the database at `db_url`, listening
/// on `bind`, with the tests' JWT secret, no send rate limit and `env` on top.
pub struct Serving {
    /// SIGTERMed (then SIGKILLed) if still running when dropped.
    pub child: crate::cli::ChildGuard,
    pub addr: SocketAddr,
    log: Option<std::thread::JoinHandle<String>>,
}

pub fn serve_child(db_url: &str, dir: &Path, bind: SocketAddr, env: &[(&str, &str)]) -> Serving {
    let secret = test_config(dir.to_path_buf()).auth.jwt_secret.unwrap();
    let bind = bind.to_string();
    let mut cmd = crate::cli::chatd(dir, Some(db_url), &["serve", "--bind", &bind]);
    cmd.env("CHATD_AUTH__JWT_SECRET", secret)
        .env("CHATD_LIMITS__MESSAGES_PER_SEC", "0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = crate::cli::ChildGuard(cmd.spawn().expect("spawn chatd serve"));
    let (addr, log) = crate::cli::wait_for_listen(child.stderr.take().unwrap());
    Serving {
        child,
        addr: addr.parse().expect("serve logs the address it listens on"),
        log: Some(log),
    }
}

impl Serving {
    /// Waits at most `limit` for the process to exit; returns its status.
    pub fn exited_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chatd serve still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote to stderr; call once it has exited.
    pub fn log(&mut self) -> String {
        self.log
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}
