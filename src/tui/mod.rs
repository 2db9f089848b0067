//! `chatd tui`: a live console for operators, over the admin API.
//!
//! Split the way ratatui apps are: `app` holds the state and every change to it (pure, unit
//! tested), `ui` draws a state (pure, tested on a `TestBackend`), `client` talks to the server
//! (the stream that feeds snapshots, the REST actions), `terminal` puts the terminal in the
//! console's mode and always back. `run` is the one event loop that joins them: key events,
//! a tick, snapshots from the client task and the outcomes of actions, each turned into a
//! call on `App`, then a redraw. Nothing waits on the network inside the loop: the stream
//! runs in its own task and every action in a task of its own, so the screen never freezes
//! on a slow or dead server.

pub mod app;
pub mod client;
mod terminal;
pub mod ui;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

pub use app::{Action, App, StreamEvent};
pub use client::{AdminClient, Auth, ClientError, Secret, StreamOptions};

use crate::app::Signals;

/// How often the screen is redrawn when nothing else happens (the reconnect countdown).
const TICK: Duration = Duration::from_millis(250);

/// Runs the console until the operator quits or a signal arrives. The terminal is restored
/// on every way out.
pub async fn run(client: AdminClient, options: StreamOptions, signals: &mut Signals) -> std::io::Result<()> {
    let client = Arc::new(client);
    let (stream_tx, mut stream_rx) = mpsc::channel::<StreamEvent>(8);
    let stream = tokio::spawn(client.clone().run_stream(options, stream_tx));
    let (done_tx, mut done_rx) = mpsc::channel::<(Action, Result<(), String>)>(8);
    let mut app = App::new(client.base(), Instant::now());
    let result = async {
        let mut guard = terminal::TerminalGuard::enter()?;
        let mut keys = EventStream::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !app.quit {
            let drawn = guard.terminal.draw(|frame| ui::render(frame, &app))?;
            // Keys are judged against what was drawn (a too-small screen shows no rows).
            app.resized(drawn.area.width, drawn.area.height);
            tokio::select! {
                event = keys.next() => match event {
                    Some(Ok(Event::Key(key))) => {
                        if let Some(action) = app.on_key(key) {
                            app.on_action_started(&action);
                            let (client, done) = (client.clone(), done_tx.clone());
                            tokio::spawn(async move {
                                let result = client.perform(&action).await.map_err(|e| e.to_string());
                                let _ = done.send((action, result)).await;
                            });
                        }
                    }
                    // Recorded before any key that follows it; redrawn at the top of the loop.
                    Some(Ok(Event::Resize(width, height))) => app.resized(width, height),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => break,
                },
                Some(event) = stream_rx.recv() => app.on_stream(event),
                Some((action, result)) = done_rx.recv() => app.on_action_done(&action, result),
                _ = tick.tick() => app.tick(Instant::now()),
                _ = signals.recv() => break,
            }
        }
        Ok(())
    }
    .await;
    stream.abort();
    result
}
