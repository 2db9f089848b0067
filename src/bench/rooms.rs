//! `chatd bench rooms`: K rooms of N sockets each, every socket sending, R messages/s in
//! total: durable ingest (every message is a committed row) with a small fan-out per room.

use std::time::Duration;

use super::load::{self, LoadReport, StepOptions};
use super::{progress, Result, Target};

#[derive(Debug, Clone)]
pub struct RoomsOptions {
    pub rooms: usize,
    /// Sockets per room, one account each; all of them send.
    pub clients: usize,
    /// Messages/s over all sockets.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub cleanup: bool,
}

pub async fn run(target: &Target, options: &RoomsOptions) -> Result<LoadReport> {
    let prefix = super::run_prefix();
    if target.progress {
        progress(format_args!(
            "rooms: run {prefix}, {} rooms × {} clients",
            options.rooms, options.clients
        ));
    }
    let mut setup = load::setup(
        target,
        "rooms",
        &prefix,
        options.rooms,
        options.clients,
        options.clients,
    )
    .await?;
    let step = StepOptions {
        rate: options.rate,
        warmup: options.warmup,
        duration: options.duration,
        drain: options.drain,
    };
    let result = setup.step(target, &step).await;
    setup.close().await;
    if options.cleanup {
        super::cleanup(target, &setup.room_owners(), &setup.accounts).await?;
    }
    result
}
