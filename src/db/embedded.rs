//! Embedded mode: a private PostgreSQL cluster under `<data_dir>/postgres`.
//!
//! chatd uses the server binaries already installed on the machine (`initdb`, `pg_ctl`,
//! `postgres`); nothing is downloaded. The cluster listens only on a unix socket in a
//! directory that only its owner can enter, so `trust` authentication is safe.
//!
//! Invariants:
//! - PostgreSQL refuses to run as root; when chatd is root the cluster's files belong to an
//!   unprivileged account (`database.embedded_user`, default `postgres`) and every PostgreSQL
//!   process is spawned with that uid/gid. The same code runs unchanged as a normal user.
//! - The postmaster is started in its own process group so that a Ctrl-C aimed at chatd does
//!   not reach it; chatd stops it itself (`pg_ctl stop -m fast`), which is a clean shutdown.
//! - An already-running cluster (started by another chatd process, or orphaned by a crash) is
//!   attached to, never initialised twice; the last chatd process using it stops it
//!   (see `datadir`). A stale `postmaster.pid` whose process is gone (or
//!   is no longer a postmaster) is removed before starting.
//! - The test harness uses the very same code with `durable = false` (fsync off).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};
use sha2::{Digest, Sha256};
use tokio::process::Command;

/// The socket's "port": only its file name depends on it; nothing listens on TCP.
const PORT: u16 = 5432;
/// Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The database chatd keeps its tables in.
pub const DATABASE: &str = "chatd";
/// Superuser created by initdb.
pub const SUPERUSER: &str = "postgres";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "embedded PostgreSQL needs the PostgreSQL server binaries (initdb, pg_ctl, postgres), \
         which were not found in PATH, `pg_config --bindir` or /usr/lib/postgresql/*/bin: \
         install them (Debian/Ubuntu: `apt-get install postgresql`) or set database.url"
    )]
    BinariesNotFound,
    #[error(
        "chatd runs as root but PostgreSQL refuses to; the account '{0}' that should run the \
         embedded cluster does not exist: create it (`useradd -r {0}`), set \
         database.embedded_user, or run chatd as a normal user"
    )]
    NoUnprivilegedUser(String),
    #[error("{0}")]
    Io(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("embedded PostgreSQL did not become ready within {0:?}; see {1}")]
    NotReady(Duration, String),
}

fn io(context: impl std::fmt::Display, e: std::io::Error) -> EmbeddedError {
    EmbeddedError::Io(format!("{context}: {e}"))
}

/// Settings for one embedded cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// chatd's data directory; the cluster lives in `<data_dir>/postgres`.
    pub data_dir: PathBuf,
    /// Where the server binaries are; searched for when `None`.
    pub bin_dir: Option<PathBuf>,
    /// Account to run PostgreSQL as when chatd is root.
    pub run_as_user: String,
    /// `false` only for throwaway test clusters (fsync off, no initdb sync).
    pub durable: bool,
}

/// A located (and, after `start`, running) embedded cluster.
#[derive(Debug, Clone)]
pub struct Embedded {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    owner: Option<(Uid, Gid)>,
    durable: bool,
}

impl Embedded {
    /// Finds the binaries, lays out the directories and runs `initdb` if the cluster does not
    /// exist yet. Does not start the server.
    pub async fn prepare(opts: &EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let bin_dir = match &opts.bin_dir {
            Some(dir) if has_server_binaries(dir) => dir.clone(),
            Some(dir) => {
                return Err(EmbeddedError::Io(format!(
                    "database.pg_bin_dir {} does not contain initdb, pg_ctl and postgres",
                    dir.display()
                )))
            }
            None => find_bin_dir().ok_or(EmbeddedError::BinariesNotFound)?,
        };
        let owner = if Uid::effective().is_root() {
            let user = User::from_name(&opts.run_as_user)
                .ok()
                .flatten()
                .ok_or_else(|| EmbeddedError::NoUnprivilegedUser(opts.run_as_user.clone()))?;
            if user.uid.is_root() {
                return Err(EmbeddedError::NoUnprivilegedUser(opts.run_as_user.clone()));
            }
            Some((user.uid, user.gid))
        } else {
            None
        };

        std::fs::create_dir_all(&opts.data_dir)
            .map_err(|e| io(format!("cannot create data dir {}", opts.data_dir.display()), e))?;
        let data_dir = std::fs::canonicalize(&opts.data_dir)
            .map_err(|e| io(format!("cannot resolve data dir {}", opts.data_dir.display()), e))?;

        // As root the cluster's owner must be able to walk down to it. A data dir under
        // /root (mode 0700) is not reachable; keep the cluster in /var/lib/chatd instead and
        // leave a symlink in the data dir so an operator can find it.
        let mut cluster_root = data_dir.clone();
        if let Some((uid, gid)) = owner {
            if !reachable_by(&data_dir, uid, gid) {
                let alt = PathBuf::from("/var/lib/chatd/embedded").join(short_hash(&data_dir));
                std::fs::create_dir_all(&alt).map_err(|e| io(format!("cannot create {}", alt.display()), e))?;
                for dir in ["/var/lib/chatd", "/var/lib/chatd/embedded"] {
                    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
                }
                let link = data_dir.join("postgres");
                if std::fs::symlink_metadata(&link).is_err() {
                    let _ = std::os::unix::fs::symlink(alt.join("postgres"), &link);
                }
                tracing::info!(
                    "the data dir is not reachable by '{}'; the embedded cluster lives in {}",
                    opts.run_as_user,
                    alt.display()
                );
                cluster_root = alt;
            }
        }
        let pgdata = cluster_root.join("postgres");
        let mut socket_dir = cluster_root.join("run");
        if socket_dir.as_os_str().len() + ".s.PGSQL.5432".len() + 1 > MAX_SOCKET_PATH {
            socket_dir = std::env::temp_dir().join(format!("chatd-{}", short_hash(&pgdata)));
        }
        let log_file = pgdata.join("log").join("chatd-embedded.log");

        let this = Self {
            bin_dir,
            pgdata,
            socket_dir,
            log_file,
            owner,
            durable: opts.durable,
        };
        make_socket_dir(&this.socket_dir, this.owner.map(|(uid, _)| uid))?;
        this.give_to_owner(&this.socket_dir)?;
        if !this.pgdata.join("PG_VERSION").is_file() {
            this.initdb().await?;
        }
        this.write_settings()?;
        Ok(this)
    }

    /// Connection settings for `dbname` over the cluster's socket.
    pub fn connect_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.socket_dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("chatd")
            .connect_timeout(Duration::from_secs(5));
        cfg
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Starts the postmaster unless one is already serving this cluster, then makes sure the
    /// `chatd` database exists.
    pub async fn start(&self) -> Result<(), EmbeddedError> {
        if self.ping().await {
            tracing::info!(pgdata = %self.pgdata.display(), "attached to the running embedded PostgreSQL");
        } else {
            self.clear_stale_pid_file()?;
            // A live postmaster that does not answer yet is starting or stopping: give it time.
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.pgdata.join("postmaster.pid").exists() && Instant::now() < deadline {
                if self.ping().await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.clear_stale_pid_file()?;
            }
            if !self.ping().await {
                self.pg_ctl_start().await?;
            }
        }
        self.ensure_database(DATABASE).await
    }

    /// Stops the postmaster (`fast`: disconnect clients, checkpoint, exit cleanly).
    pub async fn stop(&self) -> Result<(), EmbeddedError> {
        let mode = if self.durable { "fast" } else { "immediate" };
        let out = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", mode, "-w", "-t", "60"])
            .output()
            .await
            .map_err(|e| io("cannot run pg_ctl", e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // Already stopped (by someone else) is fine.
            if !stderr.contains("Is server running?") {
                return Err(EmbeddedError::Command {
                    what: "pg_ctl stop".into(),
                    detail: stderr.trim().into(),
                });
            }
        }
        tracing::info!(pgdata = %self.pgdata.display(), "embedded PostgreSQL stopped");
        Ok(())
    }

    /// `true` when the cluster answers a query.
    pub async fn ping(&self) -> bool {
        if !self.socket_dir.join(format!(".s.PGSQL.{PORT}")).exists() {
            return false;
        }
        let mut cfg = self.connect_config("postgres");
        cfg.connect_timeout(Duration::from_secs(2));
        match cfg.connect(tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                let task = tokio::spawn(conn);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = task.await;
                ok
            }
            Err(_) => false,
        }
    }

    async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        let (client, conn) = self
            .connect_config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| EmbeddedError::Io(format!("cannot connect to embedded PostgreSQL: {e}")))?;
        let task = tokio::spawn(conn);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| EmbeddedError::Io(format!("cannot query embedded PostgreSQL: {e}")))?
            .is_some();
        if !exists {
            // Identifiers cannot be parameters; `name` is one of our own constants.
            if let Err(e) = client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await {
                // Another chatd process may have created it a moment ago.
                if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                    return Err(EmbeddedError::Io(format!("cannot create database {name}: {e}")));
                }
            }
        }
        drop(client);
        let _ = task.await;
        Ok(())
    }

    /// Creates the cluster. `initdb` works in a staging directory next to `pgdata` that is
    /// renamed into place only once complete, so an interrupted first run (Ctrl-C, crash,
    /// power loss) never leaves a half-built cluster that later looks real: the next run
    /// throws the staging directory away and starts over.
    async fn initdb(&self) -> Result<(), EmbeddedError> {
        tracing::info!(pgdata = %self.pgdata.display(), "initialising the embedded PostgreSQL cluster");
        if let Ok(mut entries) = std::fs::read_dir(&self.pgdata) {
            if entries.next().is_some() {
                return Err(EmbeddedError::Io(format!(
                    "{} exists but is not a complete PostgreSQL cluster (no PG_VERSION): \
                     move it away and run chatd again to create a new one",
                    self.pgdata.display()
                )));
            }
            // An empty directory (made by an operator, or by an older chatd) is replaced.
            std::fs::remove_dir(&self.pgdata)
                .map_err(|e| io(format!("cannot remove empty {}", self.pgdata.display()), e))?;
        }
        let staging = self.pgdata.with_file_name("postgres.initdb");
        if std::fs::symlink_metadata(&staging).is_ok() {
            tracing::warn!("removing {} left by an interrupted initdb", staging.display());
            std::fs::remove_dir_all(&staging).map_err(|e| io(format!("cannot remove {}", staging.display()), e))?;
        }
        self.make_private_dir(&staging)?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&staging)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"]);
        if !self.durable {
            cmd.arg("--no-sync");
        }
        let out = cmd.output().await.map_err(|e| io("cannot run initdb", e))?;
        if !out.status.success() {
            // Leave nothing half-made behind: the next run must start from scratch.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(EmbeddedError::Command {
                what: "initdb".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let conf = staging.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| io("cannot read postgresql.conf", e))?;
        text.push_str(
            "\n# Written by chatd: its own settings, rewritten at every start.\ninclude_if_exists = 'chatd.conf'\n",
        );
        std::fs::write(&conf, text).map_err(|e| io("cannot write postgresql.conf", e))?;
        std::fs::rename(&staging, &self.pgdata).map_err(|e| {
            io(
                format!("cannot move {} to {}", staging.display(), self.pgdata.display()),
                e,
            )
        })
    }

    /// Settings chatd owns; rewritten at every start so a moved socket dir takes effect.
    fn write_settings(&self) -> Result<(), EmbeddedError> {
        let quoted = self.socket_dir.to_string_lossy().replace('\'', "''");
        let mut text = format!(
            "listen_addresses = ''\nport = {PORT}\nunix_socket_directories = '{quoted}'\n\
             unix_socket_permissions = 0700\nmax_connections = 200\n"
        );
        if !self.durable {
            text.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.pgdata.join("chatd.conf");
        std::fs::write(&path, text).map_err(|e| io(format!("cannot write {}", path.display()), e))?;
        self.give_to_owner(&path)?;
        std::fs::create_dir_all(self.log_file.parent().unwrap_or(&self.pgdata))
            .map_err(|e| io("cannot create the log directory", e))?;
        self.give_to_owner(self.log_file.parent().unwrap_or(&self.pgdata))
    }

    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60"])
            .output()
            .await
            .map_err(|e| io("cannot run pg_ctl", e))?;
        if !out.status.success() {
            let log_tail = std::fs::read_to_string(&self.log_file)
                .map(|t| t.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
                .unwrap_or_default();
            return Err(EmbeddedError::Command {
                what: "starting embedded PostgreSQL".into(),
                detail: format!("{} {}", String::from_utf8_lossy(&out.stderr).trim(), log_tail),
            });
        }
        for _ in 0..100 {
            if self.ping().await {
                tracing::info!(pgdata = %self.pgdata.display(), "embedded PostgreSQL started");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EmbeddedError::NotReady(
            Duration::from_secs(10),
            self.log_file.display().to_string(),
        ))
    }

    /// The pid in `postmaster.pid`, and whether it is a live postmaster of this cluster; `None`
    /// when there is no pid file.
    fn postmaster(&self) -> Option<(i32, bool)> {
        let text = std::fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
        // Ours only if that process is a postmaster for *this* data directory (pg_ctl passes
        // `-D <pgdata>`); a recycled pid, even another cluster's postmaster, is stale.
        let pgdata = self.pgdata.to_string_lossy();
        let alive = pid > 0
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).split('\0').any(|arg| arg == pgdata))
                .unwrap_or(false);
        Some((pid, alive))
    }

    /// `true` while this cluster's postmaster process exists, answering or not (busy, out of
    /// connection slots, recovering).
    pub fn postmaster_alive(&self) -> bool {
        self.postmaster().is_some_and(|(_, alive)| alive)
    }

    /// Removes `postmaster.pid` (and the socket lock) when the process it names is gone or is
    /// not a postmaster any more, as after a crash or a reboot that recycled the pid.
    fn clear_stale_pid_file(&self) -> Result<(), EmbeddedError> {
        let pid_file = self.pgdata.join("postmaster.pid");
        let Some((pid, alive)) = self.postmaster() else {
            return Ok(());
        };
        if !alive {
            tracing::warn!(pid, "removing a stale postmaster.pid left by a previous run");
            std::fs::remove_file(&pid_file).map_err(|e| io("cannot remove stale postmaster.pid", e))?;
            let _ = std::fs::remove_file(self.socket_dir.join(format!(".s.PGSQL.{PORT}.lock")));
            let _ = std::fs::remove_file(self.socket_dir.join(format!(".s.PGSQL.{PORT}")));
        }
        Ok(())
    }

    /// A command for one of the server binaries, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // The cwd may be unreadable for the unprivileged account (e.g. under /root).
        cmd.current_dir("/")
            .env_remove("PGDATA")
            .env("LC_ALL", "C")
            .kill_on_drop(false)
            // Own process group: a terminal's Ctrl-C goes to chatd alone, which lets a running
            // initdb or pg_ctl finish and then stops the cluster cleanly, instead of killing
            // them half-way.
            .process_group(0);
        cmd.stdin(std::process::Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    fn make_private_dir(&self, dir: &Path) -> Result<(), EmbeddedError> {
        std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(format!("cannot set permissions on {}", dir.display()), e))?;
        self.give_to_owner(dir)
    }

    fn give_to_owner(&self, path: &Path) -> Result<(), EmbeddedError> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .map_err(|e| EmbeddedError::Io(format!("cannot chown {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// Creates the socket directory, mode 0700, or checks the one that is there.
///
/// It may live in the world-writable temporary directory (when the path under the data dir
/// would be too long for a socket), where another local user could have planted a symlink or
/// a directory of their own to capture the socket or redirect our chmod/chown. So nothing is
/// followed: an existing path must be a real directory owned by us or by the cluster's owner,
/// and is then made private.
fn make_socket_dir(dir: &Path, cluster_owner: Option<Uid>) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let refuse = |why: String| {
        EmbeddedError::Io(format!(
            "refusing to use {} for the embedded cluster's socket: {why}; remove it, or use a \
             shorter data dir path",
            dir.display()
        ))
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(format!("cannot create {}", dir.display()), e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| io(format!("cannot inspect {}", dir.display()), e))?;
    if !meta.file_type().is_dir() {
        return Err(refuse("it exists and is not a directory (a symlink?)".into()));
    }
    let me = Uid::effective().as_raw();
    if meta.uid() != me && Some(meta.uid()) != cluster_owner.map(Uid::as_raw) {
        return Err(refuse(format!("it belongs to another user (uid {})", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        // Ours and a real directory (the sticky temp dir stops others from swapping it).
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(format!("cannot set permissions on {}", dir.display()), e))?;
    }
    Ok(())
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file())
}

/// PATH first, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find_map(|dir| {
            let initdb = dir.join("initdb");
            initdb.is_file().then(|| std::fs::canonicalize(&initdb).ok()).flatten()
        })
    });
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(initdb) = from_path {
        candidates.extend(initdb.parent().map(Path::to_path_buf));
    }
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versions.into_iter().map(|(_, p)| p));
    }
    candidates.into_iter().find(|dir| has_server_binaries(dir))
}

/// Whether `uid`/`gid` may search every directory from `/` down to and including `dir`.
fn reachable_by(dir: &Path, uid: Uid, gid: Gid) -> bool {
    dir.ancestors().all(|d| match std::fs::metadata(d) {
        Ok(m) => {
            let mode = m.mode();
            if m.uid() == uid.as_raw() {
                mode & 0o100 != 0
            } else if m.gid() == gid.as_raw() {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        }
        Err(_) => false,
    })
}

fn short_hash(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn socket_dir_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chatd-sock");
        make_socket_dir(&dir, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // An existing directory of ours is reused and made private again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        make_socket_dir(&dir, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn socket_dir_refuses_a_planted_symlink_or_file() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("chatd-sock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = make_socket_dir(&link, None).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        assert_eq!(mode(&target), 0o755, "the symlink's target was not touched");

        let file = tmp.path().join("chatd-file");
        std::fs::write(&file, "").unwrap();
        assert!(make_socket_dir(&file, None).is_err());
    }

    #[test]
    fn socket_dir_refuses_a_directory_of_another_user() {
        if !Uid::effective().is_root() {
            return; // only root can make a directory belong to someone else
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chatd-sock");
        std::fs::create_dir(&dir).unwrap();
        nix::unistd::chown(&dir, Some(Uid::from_raw(65534)), None).unwrap();
        let err = make_socket_dir(&dir, Some(Uid::from_raw(12345)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("another user"), "{err}");
        // The cluster's own account may own it.
        make_socket_dir(&dir, Some(Uid::from_raw(65534))).unwrap();
    }
}
