//! Coordination between chatd processes that share one data directory.
//!
//! - `serve.lock` is held (exclusively) by a `chatd serve` for its whole life: one server per
//!   data dir, and short commands can tell that a server is using the embedded cluster.
//! - `embedded.lock` is held briefly while a process creates/starts the embedded cluster, or
//!   decides to stop it, so two first runs never `initdb` at once and nobody stops a cluster
//!   that another process has just attached to.
//! - `embedded.users` is held *shared* by every process using the embedded cluster (`serve`,
//!   `migrate`, `user`, …) for as long as it uses it. The last one out (the one that can take it
//!   exclusively) stops the cluster. The kernel drops a crashed process's lock, so a crash never
//!   keeps a cluster alive forever: the next user adopts the orphan and stops it when done.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::Duration;

pub const SERVE_LOCK: &str = "serve.lock";
const EMBEDDED_LOCK: &str = "embedded.lock";
const EMBEDDED_USERS: &str = "embedded.users";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another chatd serve is already using the data dir {0}")]
    AlreadyServed(String),
    #[error("cannot lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn open(dir: &Path, name: &str) -> Result<File, LockError> {
    let path = dir.join(name);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    Ok(file)
}

/// As root, refuses a data dir that belongs to another account (the systemd unit's
/// `/var/lib/chatd`, owned by `chatd`). Its owner controls what is inside — it could plant
/// symlinks that make root write or chown files elsewhere — so root must not work there;
/// the command is run as that account instead. A data dir that does not exist yet is fine.
pub fn refuse_foreign_as_root(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| meta.uid().to_string());
    Err(format!(
        "the data directory {} belongs to '{owner}': run chatd as that account (sudo -u {owner} chatd …), not as root",
        dir.display()
    ))
}

/// Takes `serve.lock` for the caller's lifetime (drop the file to release it).
pub fn lock_serve(dir: &Path) -> Result<File, LockError> {
    let file = open(dir, SERVE_LOCK)?;
    // A short command probing the lock holds it for an instant: retry briefly before giving up.
    for attempt in 0..20 {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if attempt < 19 => std::thread::sleep(Duration::from_millis(50)),
            Err(TryLockError::WouldBlock) => break,
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    path: dir.join(SERVE_LOCK).display().to_string(),
                    source,
                })
            }
        }
    }
    Err(LockError::AlreadyServed(dir.display().to_string()))
}

/// Waits for, then holds, `embedded.lock` until the returned file is dropped.
pub async fn lock_embedded(dir: &Path) -> Result<File, LockError> {
    let file = open(dir, EMBEDDED_LOCK)?;
    let path = dir.join(EMBEDDED_LOCK).display().to_string();
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| LockError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| LockError::Io { path, source })
}

/// Registers this process as a user of the embedded cluster until the returned file is dropped
/// or passed to [`leave_embedded`]. Call with `embedded.lock` held.
pub fn join_embedded(dir: &Path) -> Result<File, LockError> {
    let file = open(dir, EMBEDDED_USERS)?;
    file.lock_shared().map_err(|source| LockError::Io {
        path: dir.join(EMBEDDED_USERS).display().to_string(),
        source,
    })?;
    Ok(file)
}

/// Ends this process's use of the embedded cluster; `true` when no other process uses it (the
/// caller should then stop it). Call with `embedded.lock` held.
pub fn leave_embedded(dir: &Path, membership: File) -> bool {
    drop(membership);
    match open(dir, EMBEDDED_USERS) {
        // Dropping `file` right away releases the probe; `embedded.lock` keeps newcomers out.
        Ok(file) => file.try_lock().is_ok(),
        Err(_) => false,
    }
}
