//! `chatd bench fanout`: one room, N subscribed sockets, S of them also sending, at one rate
//! or a sweep of rates over the same setup (registering is the expensive part).

use std::time::Duration;

use super::load::{self, LoadReport, StepOptions};
use super::{progress, Result, Target};

#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// Subscribed sockets, one account each; the senders are the first `senders` of them.
    pub clients: usize,
    pub senders: usize,
    /// Messages/s over all senders; one result per rate, in order.
    pub rates: Vec<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    /// Archive the room and delete the accounts at the end.
    pub cleanup: bool,
}

/// Runs the sweep; one report per rate.
pub async fn run(target: &Target, options: &FanoutOptions) -> Result<Vec<LoadReport>> {
    let prefix = super::run_prefix();
    if target.progress {
        progress(format_args!(
            "fanout: run {prefix}, {} clients ({} sending) in one room",
            options.clients, options.senders
        ));
    }
    let mut setup = load::setup(target, "fanout", &prefix, 1, options.clients, options.senders).await?;
    let result = sweep(target, &mut setup, options).await;
    setup.close().await;
    if options.cleanup {
        super::cleanup(target, &setup.room_owners(), &setup.accounts).await?;
    }
    result
}

async fn sweep(target: &Target, setup: &mut load::Setup, options: &FanoutOptions) -> Result<Vec<LoadReport>> {
    let mut reports = Vec::with_capacity(options.rates.len());
    for &rate in &options.rates {
        let report = setup.step(target, &step_options(options, rate)).await?;
        // A server that fell behind still works through the backlog during the next step,
        // which would measure that backlog rather than the next rate: stop here.
        let behind = report.unanswered * 10 > report.sent;
        reports.push(report);
        if behind {
            if target.progress && reports.len() < options.rates.len() {
                progress(format_args!(
                    "fanout: more than 10% of the sends at {rate} msg/s were unanswered after the drain; the sweep stops here"
                ));
            }
            break;
        }
    }
    Ok(reports)
}

pub(crate) fn step_options(options: &FanoutOptions, rate: f64) -> StepOptions {
    StepOptions {
        rate,
        warmup: options.warmup,
        duration: options.duration,
        drain: options.drain,
    }
}
