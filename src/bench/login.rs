//! `chatd bench login`: C tasks log in back to back (POST /auth/login) over C accounts; each
//! login costs the server a full PBKDF2 hash. With `--during fanout`, the same fan-out step
//! runs first alone (baseline), then with the login flood, and the two p99s are compared:
//! password hashing must not starve message delivery (target: ratio ≤ 2).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::fanout::{self, FanoutOptions};
use super::load::{self, LoadReport};
use super::{error_code, histogram, progress, Account, Errors, Latency, Result, Target};

#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub concurrency: usize,
    /// How long the flood runs alone; with `during`, it runs for the whole fan-out step instead.
    pub duration: Duration,
    /// Run this fan-out (its first rate) alone, then again under the flood.
    pub during: Option<FanoutOptions>,
    pub cleanup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginReport {
    pub scenario: String,
    pub concurrency: usize,
    pub duration_secs: f64,
    pub logins: u64,
    pub logins_per_sec: f64,
    pub login_ms: Latency,
    pub errors: Errors,
    pub fanout_baseline: Option<LoadReport>,
    pub fanout_during: Option<LoadReport>,
    /// Fan-out delivery p99 under the flood ÷ without it (target ≤ 2).
    pub p99_ratio: Option<f64>,
}

pub async fn run(target: &Target, options: &LoginOptions) -> Result<LoginReport> {
    let prefix = super::run_prefix();
    let accounts = super::register_accounts(target, &prefix, "l", options.concurrency.max(1)).await?;
    let Some(fan) = &options.during else {
        let stop = CancellationToken::new();
        let flood = tokio::spawn(flood(target.clone(), accounts.clone(), stop.clone()));
        tokio::time::sleep(options.duration).await;
        stop.cancel();
        let tally = flood.await.map_err(|e| super::failed(format!("login flood: {e}")))?;
        if options.cleanup {
            super::cleanup(target, &[], &accounts).await?;
        }
        return Ok(report(options, tally, None, None));
    };
    let rate = *fan
        .rates
        .first()
        .ok_or_else(|| super::failed("--during fanout needs a --rate"))?;
    let mut setup = load::setup(target, "fanout", &prefix, 1, fan.clients, fan.senders).await?;
    let step = fanout::step_options(fan, rate);
    let result = async {
        if target.progress {
            progress(format_args!("login: fan-out baseline at {rate} msg/s"));
        }
        let baseline = setup.step(target, &step).await?;
        if target.progress {
            progress(format_args!(
                "login: the same fan-out with {} logins in flight",
                options.concurrency
            ));
        }
        let stop = CancellationToken::new();
        let flood = tokio::spawn(flood(target.clone(), accounts.clone(), stop.clone()));
        let during = setup.step(target, &step).await;
        stop.cancel();
        let tally = flood.await.map_err(|e| super::failed(format!("login flood: {e}")))?;
        Ok::<_, super::BenchError>((baseline, during?, tally))
    }
    .await;
    setup.close().await;
    if options.cleanup {
        let mut all = setup.accounts.clone();
        all.extend(accounts.iter().cloned());
        super::cleanup(target, &setup.room_owners(), &all).await?;
    }
    let (baseline, during, tally) = result?;
    Ok(report(options, tally, Some(baseline), Some(during)))
}

struct Tally {
    logins: u64,
    hist: hdrhistogram::Histogram<u64>,
    errors: Errors,
    wall: Duration,
}

fn report(options: &LoginOptions, t: Tally, baseline: Option<LoadReport>, during: Option<LoadReport>) -> LoginReport {
    let p99_ratio = match (&baseline, &during) {
        (Some(b), Some(d)) if b.deliver_ms.p99 > 0.0 => {
            Some((d.deliver_ms.p99 / b.deliver_ms.p99 * 100.0).round() / 100.0)
        }
        _ => None,
    };
    LoginReport {
        scenario: "login".into(),
        concurrency: options.concurrency,
        duration_secs: super::round1(t.wall.as_secs_f64()),
        logins: t.logins,
        logins_per_sec: super::round1(t.logins as f64 / t.wall.as_secs_f64().max(1e-9)),
        login_ms: Latency::of(&t.hist),
        errors: t.errors,
        fanout_baseline: baseline,
        fanout_during: during,
        p99_ratio,
    }
}

/// One task per account, logging in back to back until `stop`; task `k` talks to node `k mod n`.
async fn flood(target: Target, accounts: Vec<Account>, stop: CancellationToken) -> Tally {
    let started = Instant::now();
    let tasks: Vec<_> = accounts
        .into_iter()
        .enumerate()
        .map(|(k, a)| {
            let (target, stop) = (target.node(k), stop.clone());
            tokio::spawn(async move {
                let mut tally = Tally {
                    logins: 0,
                    hist: histogram(),
                    errors: Errors::new(),
                    wall: Duration::ZERO,
                };
                let body = json!({"username": a.username, "password": a.password});
                while !stop.is_cancelled() {
                    let t = Instant::now();
                    let call = target.call(reqwest::Method::POST, "/auth/login", None, Some(body.clone()));
                    let result = tokio::select! {
                        r = call => r,
                        _ = stop.cancelled() => break,
                    };
                    match result {
                        Ok((200, _)) => {
                            tally.logins += 1;
                            let _ = tally.hist.record((t.elapsed().as_micros() as u64).max(1));
                        }
                        Ok((status, v)) => {
                            *tally.errors.entry(error_code(status, &v)).or_default() += 1;
                            // A refused login (503) comes back at once; do not spin on it.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(_) => {
                            *tally.errors.entry("request_failed".into()).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally {
        logins: 0,
        hist: histogram(),
        errors: Errors::new(),
        wall: Duration::ZERO,
    };
    for task in tasks {
        if let Ok(t) = task.await {
            total.logins += t.logins;
            let _ = total.hist.add(&t.hist);
            for (k, v) in t.errors {
                *total.errors.entry(k).or_default() += v;
            }
        }
    }
    total.wall = started.elapsed();
    total
}
