//! Abuse limits that guard the doors rather than the rooms: login attempts (per address, and an
//! exponential back-off per username), registrations per address, and WebSocket connections
//! per user and per address. The per-user send rate lives with the message service
//! (`chat::Chat`); body, frame, subscription and header-timeout limits where those are read.
//!
//! Every limit is per node and in memory: a cluster of N nodes behind a load balancer admits up
//! to N times each rate (docs/security.md). Each is checked *before* the expensive part (a
//! password hash, a database round trip), and each refusal says when to come back.
//!
//! Addresses are the client's as `http::client_info` resolves them (the peer, or what a trusted
//! proxy forwarded). IPv6 clients are counted per /64: one host is usually given a whole /64,
//! so counting single addresses would let it step around every limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::LimitsConfig;
use crate::error::{Error, Result};

/// Usernames whose failures are remembered at once; past it, new names are not tracked until
/// old entries expire (the per-address limit still holds). Bounds memory under a spray attack.
const MAX_TRACKED_USERNAMES: usize = 100_000;
/// The first wait once the free failures are used up; each further failure doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The limits of one node; cheap to clone.
#[derive(Clone)]
pub struct Guards {
    inner: Arc<Inner>,
}

struct Inner {
    login_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    registrations_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Mutex<HashMap<String, Failures>>,
    free_failures: u32,
    max_backoff: Duration,
    connections: Mutex<Connections>,
    per_user: usize,
    per_ip: usize,
}

/// Failed logins for one username since its last success, and the attempts being checked.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Attempts let through whose outcome is not known yet (their password is being hashed).
    in_flight: u32,
    /// No attempt for this username is let through before then.
    blocked_until: Instant,
    last: Instant,
}

#[derive(Default)]
struct Connections {
    users: HashMap<Uuid, usize>,
    ips: HashMap<IpAddr, usize>,
}

/// The key an address is counted under: IPv4 as is (IPv4-mapped IPv6 as IPv4), IPv6 by /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

fn keyed(per: Duration, n: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let n = NonZeroU32::new(n)?;
    let quota = Quota::with_period(per / n.get())?.allow_burst(n);
    Some(RateLimiter::keyed(quota))
}

fn refused(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr, code: &'static str, what: &str) -> Result<()> {
    limiter.check_key(&address_key(ip)).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        Error::rate_limited(code, format!("too many {what} from this address"), wait)
    })
}

impl Guards {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                login_per_ip: keyed(Duration::from_secs(60), limits.login_attempts_per_ip_per_min),
                registrations_per_ip: keyed(Duration::from_secs(3600), limits.registrations_per_ip_per_hour),
                failures: Mutex::default(),
                free_failures: limits.login_free_failures,
                max_backoff: Duration::from_secs(limits.login_max_backoff_secs),
                connections: Mutex::default(),
                per_user: limits.ws_connections_per_user,
                per_ip: limits.ws_connections_per_ip,
            }),
        }
    }

    /// Charges one registration to `ip`.
    pub fn register(&self, ip: Option<IpAddr>) -> Result<()> {
        match (&self.inner.registrations_per_ip, ip) {
            (Some(limiter), Some(ip)) => refused(limiter, ip, "rate_limited", "registrations"),
            _ => Ok(()),
        }
    }

    /// Charges one login attempt to `ip`, and refuses it while `username` is backing off.
    /// `username` is the canonical form (`Username::parse`); `None` for a name that cannot
    /// exist, which only the per-address limit covers. The attempt's outcome goes back through
    /// `LoginTicket::outcome`.
    ///
    /// Attempts whose password is still being checked count as failures-to-be: a name may have
    /// only as many in flight as it has free failures left (one once they are used up), so
    /// guesses sent all at once get no more checks than guesses sent one after another.
    pub fn login(&self, ip: Option<IpAddr>, username: Option<&str>) -> Result<LoginTicket> {
        let throttled = |wait: Duration| {
            Error::rate_limited(
                "login_throttled",
                "too many failed logins for this account; wait before trying again",
                wait,
            )
        };
        if let Some(name) = username {
            let failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = failures.get(name) {
                let now = Instant::now();
                if f.blocked_until > now {
                    return Err(throttled(f.blocked_until - now));
                }
                if f.in_flight >= self.inner.free_failures.saturating_sub(f.count).max(1) {
                    return Err(throttled(FIRST_BACKOFF));
                }
            }
        }
        if let (Some(limiter), Some(ip)) = (&self.inner.login_per_ip, ip) {
            refused(limiter, ip, "rate_limited", "login attempts")?;
        }
        let untracked = LoginTicket {
            guards: None,
            name: String::new(),
        };
        let Some(name) = username else {
            return Ok(untracked);
        };
        let mut failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !failures.contains_key(name) && failures.len() >= MAX_TRACKED_USERNAMES {
            self.forget_expired(&mut failures, now);
            if failures.len() >= MAX_TRACKED_USERNAMES {
                return Ok(untracked);
            }
        }
        let entry = failures.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            in_flight: 0,
            blocked_until: now,
            last: now,
        });
        entry.in_flight += 1;
        Ok(LoginTicket {
            guards: Some(self.clone()),
            name: name.to_owned(),
        })
    }

    /// Ends an attempt of `name`: a wrong password extends its back-off (from the
    /// `login_free_failures`-th failure on), a right one clears it, `None` (the check itself
    /// failed) leaves the count as it was.
    fn settle(&self, name: &str, succeeded: Option<bool>) {
        let mut failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = failures.get_mut(name) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match succeeded {
            Some(true) => entry.count = 0,
            Some(false) => {
                let now = Instant::now();
                entry.count = entry.count.saturating_add(1);
                entry.last = now;
                if let Some(excess) = (entry.count + 1)
                    .checked_sub(self.inner.free_failures.max(1))
                    .filter(|e| *e > 0)
                {
                    entry.blocked_until = now + self.backoff(excess);
                }
            }
            None => {}
        }
        if entry.count == 0 && entry.in_flight == 0 {
            failures.remove(name);
        }
    }

    /// The wait after the `excess`-th failure beyond the free ones: 1 s, 2 s, 4 s… capped.
    fn backoff(&self, excess: u32) -> Duration {
        let doublings = (excess - 1).min(30);
        FIRST_BACKOFF.saturating_mul(1 << doublings).min(self.inner.max_backoff)
    }

    fn forget_expired(&self, failures: &mut HashMap<String, Failures>, now: Instant) {
        // An entry is forgotten once a whole longest back-off has passed since its last failure
        // (the count starts over then).
        let keep = self.inner.max_backoff.max(FIRST_BACKOFF) * 2;
        failures.retain(|_, f| now.duration_since(f.last) < keep);
    }

    /// Forgets what no longer limits anyone (run from housekeeping).
    pub fn prune(&self) {
        let mut failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_expired(&mut failures, Instant::now());
        drop(failures);
        for limiter in [&self.inner.login_per_ip, &self.inner.registrations_per_ip]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
        }
    }

    /// Admits one more WebSocket connection of `user` from `ip`, or says which cap it would
    /// pass. The connection holds the returned slot for as long as it is open.
    pub fn connect(&self, user: Uuid, ip: Option<IpAddr>) -> Result<ConnectionSlot> {
        let ip = ip.map(address_key);
        let mut conns = self.inner.connections.lock().unwrap_or_else(|e| e.into_inner());
        let (per_user, per_ip) = (self.inner.per_user, self.inner.per_ip);
        if per_user > 0 && conns.users.get(&user).copied().unwrap_or(0) >= per_user {
            return Err(too_many_connections(format!(
                "this account already has {per_user} open connections on this server"
            )));
        }
        if let Some(ip) = ip.filter(|_| per_ip > 0) {
            if conns.ips.get(&ip).copied().unwrap_or(0) >= per_ip {
                return Err(too_many_connections(format!(
                    "this address already has {per_ip} open connections on this server"
                )));
            }
        }
        *conns.users.entry(user).or_default() += 1;
        if let Some(ip) = ip {
            *conns.ips.entry(ip).or_default() += 1;
        }
        Ok(ConnectionSlot {
            guards: self.clone(),
            user,
            ip,
        })
    }
}

/// One login attempt let through; tell it how the attempt ended. Dropped without an outcome
/// (the request failed or was cancelled), it only stops counting as in flight.
pub struct LoginTicket {
    guards: Option<Guards>,
    name: String,
}

impl LoginTicket {
    /// `true`: the password was right; `false`: it was wrong.
    pub fn outcome(mut self, succeeded: bool) {
        if let Some(guards) = self.guards.take() {
            guards.settle(&self.name, Some(succeeded));
        }
    }
}

impl Drop for LoginTicket {
    fn drop(&mut self) {
        if let Some(guards) = self.guards.take() {
            guards.settle(&self.name, None);
        }
    }
}

fn too_many_connections(message: String) -> Error {
    // Nothing to wait for but a connection of one's own to close: no retry hint.
    Error::RateLimited {
        code: "too_many_connections",
        message,
        retry_after_ms: None,
    }
}

/// One admitted WebSocket connection; dropping it frees its place.
pub struct ConnectionSlot {
    guards: Guards,
    user: Uuid,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut conns = self.guards.inner.connections.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut conns.users, self.user);
        if let Some(ip) = self.ip {
            release(&mut conns.ips, ip);
        }
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut e) = counts.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            login_free_failures: 2,
            login_max_backoff_secs: 5,
            ws_connections_per_user: 2,
            ws_connections_per_ip: 3,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn back_off_starts_after_the_free_failures_doubles_and_is_capped() {
        let g = Guards::new(&limits());
        assert_eq!(g.backoff(1), Duration::from_secs(1));
        assert_eq!(g.backoff(2), Duration::from_secs(2));
        assert_eq!(g.backoff(3), Duration::from_secs(4));
        assert_eq!(g.backoff(4), Duration::from_secs(5), "capped at login_max_backoff_secs");
        assert_eq!(g.backoff(u32::MAX), Duration::from_secs(5), "no overflow");
        let fail = |name: &str| g.login(None, Some(name)).unwrap().outcome(false);
        fail("alice");
        let ticket = g.login(None, Some("alice")).expect("one free failure left");
        let e = g
            .login(None, Some("alice"))
            .err()
            .expect("the last free attempt is in flight");
        assert_eq!(e.code(), "login_throttled");
        ticket.outcome(false);
        let e = g.login(None, Some("alice")).err().expect("two failures: backing off");
        assert_eq!(e.code(), "login_throttled");
        assert!(g.login(None, Some("bob")).is_ok(), "other accounts are unaffected");
        g.inner.failures.lock().unwrap().get_mut("alice").unwrap().blocked_until = Instant::now();
        let ticket = g.login(None, Some("alice")).expect("the wait is over");
        assert!(
            g.login(None, Some("alice")).is_err(),
            "one attempt at a time while backing off"
        );
        ticket.outcome(true);
        assert!(g.login(None, Some("alice")).is_ok(), "a success clears the back-off");
    }

    #[test]
    fn connection_slots_are_counted_per_user_and_address_and_freed_on_drop() {
        let g = Guards::new(&limits());
        let (u1, u2) = (Uuid::new_v4(), Uuid::new_v4());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = g.connect(u1, Some(ip)).unwrap();
        let _b = g.connect(u1, Some(ip)).unwrap();
        assert_eq!(g.connect(u1, None).err().unwrap().code(), "too_many_connections");
        let _c = g.connect(u2, Some(ip)).unwrap();
        assert_eq!(g.connect(u2, Some(ip)).err().unwrap().code(), "too_many_connections");
        drop(a);
        assert!(g.connect(u2, Some(ip)).is_ok(), "a closed connection frees its place");
        assert!(g.inner.connections.lock().unwrap().users.contains_key(&u2));
    }
}
