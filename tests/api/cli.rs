//! The `chatd` binary itself: `chatd user …` and `chatd migrate` against a real database,
//! exit codes, and the embedded-cluster lifecycle (start, reuse, attach, stale pid, stop).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{scratch_dir, TestApp};

/// `chatd ARGS` with a clean environment: no inherited CHATD_* and cheap hashing.
pub(crate) fn chatd(dir: &Path, db_url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatd"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CHATD_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("CHATD_AUTH__PBKDF2_ITERATIONS", "1000")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args);
    if let Some(url) = db_url {
        cmd.env("CHATD_DATABASE__URL", url);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn chatd");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run chatd")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Exit status, stdout, and stderr — which must be at most one line when it fails.
pub(crate) fn outcome(out: &Output) -> (i32, String, String) {
    let err = text(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        assert_eq!(err.trim_end().lines().count(), 1, "one error line, got: {err}");
        assert!(err.starts_with("chatd: error: "), "{err}");
    }
    (code, text(&out.stdout), err)
}

#[tokio::test]
async fn user_commands_manage_accounts_the_api_sees() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let url = Some(app.db.url.as_str());

    let out = run_with_stdin(
        chatd(
            dir.path(),
            url,
            &[
                "user",
                "create",
                "Root",
                "--admin",
                "--display-name",
                "Operator",
                "--password-stdin",
            ],
        ),
        "s3cret-pass\n",
    );
    let (code, stdout, _) = outcome(&out);
    assert_eq!(code, 0, "{}", text(&out.stderr));
    assert!(stdout.contains("created user root (admin)"), "{stdout}");
    let (s, body) = app.login("root", "s3cret-pass").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["user"]["is_admin"], true);
    assert_eq!(body["user"]["display_name"], "Operator");

    app.register("zoe", "password123").await;
    let out = run(chatd(dir.path(), url, &["user", "list", "--json"]));
    let list: Value = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["root", "zoe"]);
    let out = run(chatd(dir.path(), url, &["user", "list"]));
    assert!(text(&out.stdout)
        .lines()
        .any(|l| l.starts_with("zoe") && l.contains("active")));

    let out = run(chatd(dir.path(), url, &["user", "show", "zoe"]));
    assert!(text(&out.stdout).contains("username:     zoe"));

    // passwd revokes sessions and changes the password.
    let session = app.login("zoe", "password123").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run_with_stdin(
        chatd(dir.path(), url, &["user", "passwd", "zoe", "--password-stdin"]),
        "brand-new-pass\n",
    );
    assert_eq!(outcome(&out).0, 0);
    assert_eq!(app.me(&session).await.0, 401);
    assert_eq!(app.login("zoe", "password123").await.0, 401);
    assert_eq!(app.login("zoe", "brand-new-pass").await.0, 200);

    // disable / enable.
    assert_eq!(outcome(&run(chatd(dir.path(), url, &["user", "disable", "zoe"]))).0, 0);
    assert_eq!(app.login("zoe", "brand-new-pass").await.0, 403);
    assert_eq!(outcome(&run(chatd(dir.path(), url, &["user", "enable", "zoe"]))).0, 0);
    assert_eq!(app.login("zoe", "brand-new-pass").await.0, 200);

    // set-admin.
    assert_eq!(
        outcome(&run(chatd(dir.path(), url, &["user", "set-admin", "zoe", "true"]))).0,
        0
    );
    assert_eq!(app.login("zoe", "brand-new-pass").await.1["user"]["is_admin"], true);
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["user", "set-admin", "zoe", "maybe"])));
    assert_eq!(code, 2);
    assert!(err.contains("'maybe'"), "{err}");

    // delete.
    assert_eq!(outcome(&run(chatd(dir.path(), url, &["user", "delete", "zoe"]))).0, 0);
    assert_eq!(app.login("zoe", "brand-new-pass").await.0, 401);
}

#[tokio::test]
async fn user_commands_fail_with_one_line_and_the_documented_exit_code() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let url = Some(app.db.url.as_str());
    app.register("taken", "password123").await;

    // 1: runtime failures.
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["user", "show", "ghost"])));
    assert_eq!(code, 1);
    assert!(err.contains("no user named 'ghost'"), "{err}");
    let (code, _, err) = outcome(&run_with_stdin(
        chatd(dir.path(), url, &["user", "create", "taken", "--password-stdin"]),
        "password123\n",
    ));
    assert_eq!(code, 1);
    assert!(err.contains("taken"), "{err}");
    assert_eq!(
        outcome(&run(chatd(dir.path(), url, &["user", "disable", "ghost"]))).0,
        1
    );

    // 2: usage and input errors.
    let (code, _, err) = outcome(&run_with_stdin(
        chatd(dir.path(), url, &["user", "create", "x", "--password-stdin"]),
        "password123\n",
    ));
    assert_eq!(code, 2);
    assert!(err.contains("username"), "{err}");
    let (code, _, err) = outcome(&run_with_stdin(
        chatd(dir.path(), url, &["user", "create", "shorty", "--password-stdin"]),
        "short\n",
    ));
    assert_eq!(code, 2);
    assert!(err.contains("password"), "{err}");
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["user", "create", "nopass"])));
    assert_eq!(code, 2, "no terminal and no --password-stdin");
    assert!(err.contains("--password-stdin"), "{err}");
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["user", "frobnicate"])));
    assert_eq!(code, 2, "argument errors are one line too");
    assert!(err.contains("frobnicate"), "{err}");
    let mut not_utf8 = chatd(dir.path(), url, &["user", "create", "bytes", "--password-stdin"]);
    not_utf8
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = not_utf8.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\xfepassword\n").unwrap();
    let (code, _, err) = outcome(&child.wait_with_output().unwrap());
    assert_eq!(code, 2, "{err}");
    let mut bad_config = chatd(dir.path(), url, &["user", "list"]);
    bad_config.env("CHATD_DATABASE__POOL_SIZE", "lots");
    let (code, _, err) = outcome(&run(bad_config));
    assert_eq!(code, 2);
    assert!(err.contains("database.pool_size"), "{err}");
    let mut bad_key = chatd(dir.path(), url, &["user", "list"]);
    bad_key.env("CHATD_DATABASE__POOLSIZE", "3");
    let (code, _, err) = outcome(&run(bad_key));
    assert_eq!(code, 2);
    assert!(err.contains("poolsize"), "{err}");
    let (code, _, err) = outcome(&run(chatd(
        dir.path(),
        url,
        &["--config", "/no/such/file.toml", "user", "list"],
    )));
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/file.toml"), "{err}");

    // 0: help.
    let out = run(chatd(dir.path(), url, &["user", "create", "--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--password-stdin"));

    // A database that is not there: runtime failure, one line that says why, and never the
    // password from the URL.
    let mut unreachable = chatd(
        dir.path(),
        Some("postgres://postgres:hunter2secret@127.0.0.1:1/none?connect_timeout=2"),
        &["user", "list"],
    );
    unreachable.env("CHATD_DATABASE__CONNECT_TIMEOUT_SECS", "2");
    let (code, _, err) = outcome(&run(unreachable));
    assert_eq!(code, 1);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[tokio::test]
async fn migrate_status_lists_applied_migrations() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let out = run(chatd(dir.path(), Some(&app.db.url), &["migrate", "status"]));
    let (code, stdout, _) = outcome(&out);
    assert_eq!(code, 0);
    for name in ["0001_accounts", "0002_rooms", "0003_cluster", "0004_rich_messaging"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("applied  {name}"))),
            "{stdout}"
        );
    }
    let (code, stdout, _) = outcome(&run(chatd(dir.path(), Some(&app.db.url), &["migrate"])));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("up to date (latest migration: 0004_rich_messaging)"),
        "{stdout}"
    );

    // An edited or unknown migration: status still lists everything, then fails in one line.
    let client = app.db.client().await;
    client
        .batch_execute(
            "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1; \
             INSERT INTO schema_migrations (version, name, checksum, duration_ms) \
             VALUES (999, 'from_the_future', 'x', 0)",
        )
        .await
        .unwrap();
    let (code, stdout, err) = outcome(&run(chatd(dir.path(), Some(&app.db.url), &["migrate", "status"])));
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].starts_with("EDITED   0001_accounts"), "{stdout}");
    assert!(lines[1].starts_with("applied  0002_rooms"), "{stdout}");
    assert!(lines[2].starts_with("applied  0003_cluster"), "{stdout}");
    assert!(lines[3].starts_with("applied  0004_rich_messaging"), "{stdout}");
    assert!(lines[4].starts_with("UNKNOWN  0999_from_the_future"), "{stdout}");
    assert!(err.contains("0001_accounts was edited"), "{err}");
    let (code, _, err) = outcome(&run(chatd(dir.path(), Some(&app.db.url), &["migrate"])));
    assert_eq!(code, 1);
    assert!(err.contains("0001_accounts was edited"), "{err}");
    // Serving without migrating is allowed; serving a schema that does not match is not.
    let no_migrate = ["serve", "--no-migrate", "--bind", "127.0.0.1:0"];
    let (code, _, err) = outcome(&run(chatd(dir.path(), Some(&app.db.url), &no_migrate)));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("0001_accounts was edited"), "{err}");
}

fn postmaster_running(data: &Path) -> bool {
    let pid_file = ["postgres/postmaster.pid"]
        .iter()
        .map(|p| data.join(p))
        .find(|p| p.exists());
    pid_file.is_some()
}

/// Waits for `chatd serve` to log its address; returns it.
pub(crate) fn wait_for_listen(stderr: std::process::ChildStderr) -> (String, std::thread::JoinHandle<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.trim().to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve started listening");
    (addr, reader)
}

#[tokio::test]
async fn embedded_cluster_is_created_once_reused_attached_and_stopped() {
    let dir = scratch_dir();
    let data = dir.path().join("data");

    // A short command on a fresh data dir: initdb, start, migrate, stop again.
    let (code, stdout, _) = outcome(&run(chatd(dir.path(), None, &["migrate"])));
    assert_eq!(code, 0);
    assert!(stdout.contains("applied 0001_accounts"), "{stdout}");
    assert!(data.join("postgres/PG_VERSION").is_file());
    assert!(
        !postmaster_running(&data),
        "a command that started the cluster stops it"
    );
    let created = std::fs::metadata(data.join("postgres/PG_VERSION"))
        .unwrap()
        .modified()
        .unwrap();

    let out = run_with_stdin(
        chatd(dir.path(), None, &["user", "create", "alice", "--password-stdin"]),
        "password123\n",
    );
    assert_eq!(outcome(&out).0, 0);

    // serve reuses the cluster (no second initdb), and a user command attaches to it.
    let (mut child, addr, log) = start_serve(dir.path());
    let out = run(chatd(dir.path(), None, &["user", "list", "--json"]));
    assert_eq!(outcome(&out).0, 0);
    assert!(text(&out.stdout).contains("\"alice\""));
    assert!(
        postmaster_running(&data),
        "the user command left serve's cluster running"
    );
    assert_eq!(login_status(&addr, "alice", "password123").await, 200);
    assert_eq!(
        std::fs::metadata(data.join("postgres/PG_VERSION"))
            .unwrap()
            .modified()
            .unwrap(),
        created,
        "no re-initdb"
    );

    // A second serve on the same data dir is refused.
    let (code, _, err) = outcome(&run(chatd(dir.path(), None, &["serve", "--bind", "127.0.0.1:0"])));
    assert_eq!(code, 1);
    assert!(err.contains("already using the data dir"), "{err}");

    // SIGTERM: graceful exit 0, cluster stopped cleanly.
    let (status, log) = signal_and_wait(&mut child, Signal::SIGTERM, log);
    assert!(status.success(), "serve exit status {status:?}: {log}");
    assert!(log.contains("embedded PostgreSQL stopped"), "{log}");
    assert!(!postmaster_running(&data));

    // A crash of chatd (SIGKILL) orphans its postmaster; the next serve adopts it, and
    // stops it at its own exit.
    let (mut child, _, log) = start_serve(dir.path());
    let (_, _) = signal_and_wait(&mut child, Signal::SIGKILL, log);
    assert!(postmaster_running(&data), "the orphaned postmaster is still up");
    let (mut child, addr, log) = start_serve(dir.path());
    assert_eq!(login_status(&addr, "alice", "password123").await, 200);

    // A postmaster that dies under a running serve (OOM killer, kill -9) is started again.
    let pid_file = std::fs::read_to_string(data.join("postgres/postmaster.pid")).unwrap();
    let postmaster: i32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(postmaster), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while login_status(&addr, "alice", "password123").await != 200 {
        assert!(Instant::now() < deadline, "the database never came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let restarted = std::fs::read_to_string(data.join("postgres/postmaster.pid")).unwrap();
    assert_ne!(restarted.lines().next(), pid_file.lines().next(), "a new postmaster");
    // One that is alive but does not answer (stopped here; busy or out of connection slots
    // in life) is left alone: restarting it would mean stopping a healthy cluster.
    let postmaster: i32 = restarted.lines().next().unwrap().trim().parse().unwrap();
    let postmaster = nix::unistd::Pid::from_raw(postmaster);
    nix::sys::signal::kill(postmaster, Signal::SIGSTOP).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    nix::sys::signal::kill(postmaster, Signal::SIGCONT).unwrap();
    assert_eq!(login_status(&addr, "alice", "password123").await, 200);
    let now = std::fs::read_to_string(data.join("postgres/postmaster.pid")).unwrap();
    assert_eq!(now.lines().next(), restarted.lines().next(), "the same postmaster");

    let (status, log) = signal_and_wait(&mut child, Signal::SIGINT, log);
    assert!(status.success(), "serve exit status {status:?} after Ctrl-C: {log}");
    assert!(log.contains("the embedded PostgreSQL is back"), "{log}");
    assert_eq!(log.matches("starting it again").count(), 1, "one restart only: {log}");
    assert!(!postmaster_running(&data));

    // A crash leaves a stale postmaster.pid behind; it must not block the next start.
    // Its pid may since belong to a live process that is not our postmaster (here: this test).
    std::fs::write(
        data.join("postgres/postmaster.pid"),
        format!("{}\n/nowhere\n", std::process::id()),
    )
    .unwrap();
    let (code, stdout, err) = outcome(&run(chatd(dir.path(), None, &["migrate", "status"])));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("applied  0001_accounts"), "{stdout}");
    assert!(!postmaster_running(&data));
}

use nix::sys::signal::Signal;

/// A child process that is stopped when dropped, so a failing assertion never leaks a
/// running chatd (nor the embedded cluster it would keep up): SIGTERM first, so it stops its
/// cluster cleanly, then SIGKILL if it does not exit in time.
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_serve(dir: &Path) -> (ChildGuard, String, std::thread::JoinHandle<String>) {
    let mut serve = chatd(dir, None, &["serve", "--bind", "127.0.0.1:0"]);
    serve.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = ChildGuard(serve.spawn().unwrap());
    let (addr, log) = wait_for_listen(child.stderr.take().unwrap());
    (child, addr, log)
}

/// Sends `signal` and waits (bounded) for the process to exit; returns its status and log.
fn signal_and_wait(
    child: &mut std::process::Child,
    signal: Signal,
    log: std::thread::JoinHandle<String>,
) -> (std::process::ExitStatus, String) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = wait_bounded(child);
    (status, log.join().unwrap())
}

/// Waits at most a minute for `child` to exit.
fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "chatd did not exit in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until `path` exists.
fn wait_for_path(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn login_status(addr: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_wrong_pg_bin_dir_is_one_clear_line() {
    let dir = scratch_dir();
    let mut cmd = chatd(dir.path(), None, &["migrate", "status"]);
    cmd.env("CHATD_DATABASE__PG_BIN_DIR", dir.path());
    let (code, _, err) = outcome(&run(cmd));
    assert_eq!(code, 2, "a configuration error");
    assert!(err.contains("database.pg_bin_dir"), "{err}");
    assert!(err.contains("has no initdb, pg_ctl, postgres"), "{err}");

    // A secret file that cannot be read stops `serve` before any database starts.
    let mut cmd = chatd(dir.path(), None, &["serve", "--bind", "127.0.0.1:0"]);
    cmd.env("CHATD_AUTH__JWT_SECRET_FILE", dir.path().join("missing-secret"));
    let (code, _, err) = outcome(&run(cmd));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("auth.jwt_secret_file"), "{err}");
    assert!(!dir.path().join("data").exists(), "no cluster was created");
}

#[tokio::test]
async fn concurrent_first_runs_share_one_cluster() {
    // Two commands on a fresh data dir at once: one initdb, both succeed, nothing left running.
    let dir = scratch_dir();
    let spawn = || {
        let mut cmd = chatd(dir.path(), None, &["migrate"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
        let (code, _, err) = outcome(&out);
        assert_eq!(code, 0, "{err}");
    }
    assert!(!postmaster_running(&dir.path().join("data")));
    let (code, stdout, _) = outcome(&run(chatd(dir.path(), None, &["migrate", "status"])));
    assert_eq!(code, 0);
    assert!(stdout.contains("applied  0001_accounts"), "{stdout}");
}

#[tokio::test]
async fn a_closed_or_full_stdout_is_no_panic_and_the_cluster_is_stopped() {
    let dir = scratch_dir();
    let data = dir.path().join("data");
    assert_eq!(outcome(&run(chatd(dir.path(), None, &["migrate"]))).0, 0);

    // `chatd user list | true`: the reader is gone before chatd writes.
    let mut cmd = chatd(dir.path(), None, &["user", "list"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    drop(child.stdout.take());
    let status = wait_bounded(&mut child);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "a closed pipe ends chatd quietly: {err}");
    assert!(err.is_empty(), "{err}");
    assert!(!postmaster_running(&data), "the cluster was stopped");

    // `chatd migrate status > /dev/full`: one line, exit 1.
    let mut cmd = chatd(dir.path(), None, &["migrate", "status"]);
    cmd.stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
    let (code, _, err) = outcome(&run(cmd));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(!postmaster_running(&data), "the cluster was stopped");
}

#[tokio::test]
async fn a_signal_during_a_short_command_or_serve_start_up_stops_the_cluster() {
    let dir = scratch_dir();
    let data = dir.path().join("data");
    let pid_file = data.join("postgres/postmaster.pid");

    // Ctrl-C while `chatd migrate` has the cluster up (started it, migrating or about to).
    let mut cmd = chatd(dir.path(), None, &["migrate"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    wait_for_path(&pid_file);
    let status = {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
        wait_bounded(&mut child)
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "finished or interrupted, not killed: {status:?} {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !postmaster_running(&data),
        "the interrupted command stopped the cluster"
    );

    // SIGTERM while `serve` starts (cluster starting, migrations, binding): a normal stop.
    let mut cmd = chatd(dir.path(), None, &["serve", "--bind", "127.0.0.1:0"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = ChildGuard(cmd.spawn().unwrap());
    wait_for_path(&pid_file);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_bounded(&mut child);
    assert!(status.success(), "{status:?}");
    assert!(!postmaster_running(&data), "serve stopped the cluster it was starting");

    // The cluster is intact and usable afterwards.
    let (code, stdout, err) = outcome(&run(chatd(dir.path(), None, &["migrate", "status"])));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("0001_accounts"), "{stdout}");
}

#[tokio::test]
async fn an_interrupted_initdb_is_redone_and_a_foreign_cluster_dir_refused() {
    // A crash during the first initdb leaves only the staging directory: it is thrown away.
    let dir = scratch_dir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("postgres.initdb/base")).unwrap();
    std::fs::write(data.join("postgres.initdb/PG_VERSION"), "16\n").unwrap();
    let (code, stdout, err) = outcome(&run(chatd(dir.path(), None, &["migrate"])));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("applied 0001_accounts"), "{stdout}");
    assert!(!data.join("postgres.initdb").exists());
    assert!(!postmaster_running(&data));

    // A `postgres` directory with something else in it is never overwritten nor deleted.
    let dir = scratch_dir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("postgres")).unwrap();
    std::fs::write(data.join("postgres/notes.txt"), "mine").unwrap();
    let (code, _, err) = outcome(&run(chatd(dir.path(), None, &["migrate"])));
    assert_eq!(code, 1);
    assert!(err.contains("not a complete PostgreSQL cluster"), "{err}");
    assert!(data.join("postgres/notes.txt").exists());
}

#[tokio::test]
async fn serve_flags_beat_the_environment_and_no_migrate_refuses_a_schema_behind() {
    let db = crate::helpers::TestDb::empty().await;
    let dir = scratch_dir();
    // The environment asks for port 1 and auto-migration; the flags win.
    let serve = |dir: &Path| {
        let mut serve = chatd(dir, Some(&db.url), &["serve", "--bind", "127.0.0.1:0", "--no-migrate"]);
        serve
            .env("CHATD_SERVER__BIND", "127.0.0.1:1")
            .env("CHATD_DATABASE__AUTO_MIGRATE", "true")
            .env("RUST_LOG", "info");
        serve
    };
    // Not migrating leaves the schema alone, and a schema behind the binary is not served.
    let (code, _, err) = outcome(&run(serve(dir.path())));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("migration(s) behind") && err.contains("run `chatd migrate`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().filter(|l| l.contains("error")).count(), 1, "{err}");
    let migrated: bool = db
        .client()
        .await
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!migrated, "--no-migrate applied nothing");
    let mut list = chatd(dir.path(), Some(&db.url), &["user", "list"]);
    list.env("CHATD_DATABASE__AUTO_MIGRATE", "false");
    let (code, _, err) = outcome(&run(list));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("run `chatd migrate`"), "{err}");

    let (code, _, err) = outcome(&run(chatd(dir.path(), Some(&db.url), &["migrate"])));
    assert_eq!(code, 0, "{err}");
    let mut serve = serve(dir.path());
    serve.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = ChildGuard(serve.spawn().unwrap());
    let (addr, log) = wait_for_listen(child.stderr.take().unwrap());
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":1"), "{addr}");
    let (status, log) = signal_and_wait(&mut child, Signal::SIGTERM, log);
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn root_refuses_a_data_dir_that_belongs_to_another_account() {
    // The systemd unit's data dir belongs to the chatd account, which controls what is inside
    // it (symlinks included): root working there could be made to write or chown files
    // anywhere. Root is told to run the command as that account instead, and touches nothing.
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no 'nobody' account");
        return;
    };
    let dir = scratch_dir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).unwrap();
    // A planted link that root must never follow.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "root's").unwrap();
    std::os::unix::fs::symlink(&victim, data.join("embedded.lock")).unwrap();

    for args in [
        &["user", "list"][..],
        &["migrate", "status"],
        &["serve", "--bind", "127.0.0.1:0"],
    ] {
        let (code, _, err) = outcome(&run(chatd(dir.path(), None, args)));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("belongs to 'nobody'") && err.contains("sudo -u nobody"),
            "{err}"
        );
    }
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        std::fs::metadata(&victim).unwrap().uid(),
        0,
        "the link's target was not touched"
    );
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1, "nothing was created");
}

/// Ctrl-C at the no-echo password prompt, on a real terminal (a pty, through util-linux
/// `script`): chatd ends with status 1 and one line, and the terminal echoes again.
#[test]
fn ctrl_c_at_the_password_prompt_gives_the_terminal_its_echo_back() {
    let dir = scratch_dir();
    let shell = format!(
        "'{}' --data-dir '{}' user create xavier; echo \"rc=$?\"; stty -a",
        env!("CARGO_BIN_EXE_chatd"),
        dir.path().join("data").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &shell, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` (Debian: bsdutils) runs the prompt on a pty");
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                out.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !out.lock().unwrap().contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {:?}", out.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("Password:");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    wait_for("rc=");
    wait_for("speed");
    drop(stdin);
    let _ = child.wait();
    reader.join().unwrap();
    let out = out.lock().unwrap().clone();
    assert!(out.contains("chatd: error: interrupted"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    let flags: Vec<&str> = out.split_whitespace().collect();
    assert!(
        flags.contains(&"echo") && !flags.contains(&"-echo"),
        "echo is back: {out}"
    );
}
