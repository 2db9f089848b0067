//! PBKDF2-HMAC-SHA256 password hashing, in PHC string format
//! (`$pbkdf2-sha256$i=600000,l=32$salt$hash`).
//!
//! Hashing is deliberately slow (~57 ms at 600k iterations), so it never runs on the async
//! runtime: it runs on a pool of its own (`auth.hash_workers` threads), whose threads run at a
//! lower CPU priority (nice 10). A login flood therefore uses the CPU that message delivery
//! leaves idle and cannot slow the delivery down; when nothing else runs, hashing gets all of
//! its threads' time. Each hash takes a permit from a semaphore as large as the pool, and the
//! permit travels into the hashing job, so it bounds the hashes actually running even when a
//! client disconnects mid-hash. Waiting for a permit is bounded too: past `QUEUE_TIMEOUT` the
//! request gets a 503 `unavailable` instead of queueing without end.
//! Unknown usernames are checked against a dummy hash of the same cost, so a wrong username
//! and a wrong password take the same time.

use std::sync::Arc;
use std::time::Duration;

use pbkdf2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::Error;

/// Longest a request waits for a hashing thread before it is answered 503.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much lower than the server's other threads hashing threads run (a `nice` increment).
const HASH_NICENESS: libc::c_int = 10;

pub struct PasswordHasher {
    iterations: u32,
    permits: Arc<Semaphore>,
    pool: Option<rayon::ThreadPool>,
    queue_timeout: Duration,
    dummy: OnceCell<String>,
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash is weaker than the configured cost: rehash it now that we know the password.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    pub fn new(iterations: u32, workers: usize) -> Self {
        let workers = workers.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("chatd-hash-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .inspect_err(|e| tracing::warn!("no password hashing threads ({e}); hashing on the blocking pool"))
            .ok();
        Self {
            iterations,
            permits: Arc::new(Semaphore::new(workers)),
            pool,
            queue_timeout: QUEUE_TIMEOUT,
            dummy: OnceCell::new(),
        }
    }

    /// Hashes `password` with a fresh random salt at the configured cost.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_owned();
        let rounds = self.iterations;
        self.blocking(move || hash_with(&password, rounds)).await?
    }

    /// Checks `password` against `stored`; with `stored = None` (no such user) it burns the
    /// same time against a dummy hash and reports failure.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verified, Error> {
        let stored = match stored {
            Some(s) => s.to_owned(),
            None => self.dummy().await?.to_owned(),
        };
        let known = stored_is_real(&stored, self.dummy.get());
        let password = password.to_owned();
        let configured = self.iterations;
        self.blocking(move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| Error::Internal(format!("stored password hash: {e}")))?;
            let ok = Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok();
            let rounds = parsed.params.get_decimal("i").unwrap_or(0);
            Ok(Verified {
                ok: ok && known,
                needs_rehash: ok && known && rounds < configured,
            })
        })
        .await?
    }

    /// Computes the dummy hash now, so the first unknown-user login costs the same as any.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.dummy().await.map(|_| ())
    }

    async fn dummy(&self) -> Result<&str, Error> {
        self.dummy
            .get_or_try_init(|| async {
                let rounds = self.iterations;
                self.blocking(move || hash_with("chatd-dummy-password", rounds)).await?
            })
            .await
            .map(String::as_str)
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Unavailable("too many password hashes queued".into()))?
            .map_err(|_| Error::Unavailable("hasher closed".into()))?;
        let job = move || {
            // Released when the hash is done, not when the (maybe abandoned) request is.
            let _permit = permit;
            f()
        };
        let Some(pool) = &self.pool else {
            return tokio::task::spawn_blocking(job)
                .await
                .map_err(|e| Error::Internal(format!("hashing task: {e}")));
        };
        let (done, result) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            let _ = done.send(job());
        });
        result.await.map_err(|_| Error::Internal("hashing job failed".into()))
    }
}

/// Lowers the calling thread's CPU priority (Linux nice values are per thread). Failing to is
/// harmless: the thread then runs at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; no memory is shared with them.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + HASH_NICENESS);
    }
}

fn stored_is_real(stored: &str, dummy: Option<&String>) -> bool {
    dummy.map(|d| d != stored).unwrap_or(true)
}

fn hash_with(password: &str, rounds: u32) -> Result<String, Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let params = Params {
        rounds,
        output_length: 32,
    };
    Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            Some(Algorithm::Pbkdf2Sha256.ident()),
            None,
            params,
            &salt,
        )
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_need_rehash() {
        let weak = PasswordHasher::new(1_000, 1);
        let h = weak.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{h}");
        let strong = PasswordHasher::new(2_000, 1);
        assert_eq!(
            strong.verify("correct horse", Some(&h)).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert_eq!(
            weak.verify("correct horse", Some(&h)).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!weak.verify("wrong horse", Some(&h)).await.unwrap().ok);
        // The dummy hash never verifies, not even with its own password.
        assert!(!weak.verify("chatd-dummy-password", None).await.unwrap().ok);
    }

    #[tokio::test]
    async fn an_abandoned_hash_keeps_its_permit_until_it_finishes() {
        let hasher = PasswordHasher::new(1_000, 1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        // The request gives up (client gone) while its hash is still running.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            hasher.blocking(move || {
                let _ = wait.recv();
            }),
        )
        .await;
        assert!(abandoned.is_err());
        assert_eq!(hasher.permits.available_permits(), 0, "the running hash still holds it");
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while hasher.permits.available_permits() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the permit comes back when the hash ends");
    }

    #[tokio::test]
    async fn waiting_too_long_for_a_permit_is_unavailable() {
        let mut hasher = PasswordHasher::new(1_000, 1);
        hasher.queue_timeout = Duration::from_millis(50);
        let _busy = hasher.permits.clone().acquire_owned().await.unwrap();
        let err = hasher.hash("whatever-password").await.unwrap_err();
        assert_eq!(err.code(), "unavailable");
    }
}
