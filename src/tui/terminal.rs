//! The terminal in the console's mode — raw, on the alternate screen, cursor hidden — and
//! back. Restoring is the one thing that must always happen: a console that leaves the shell
//! in raw mode on the alternate screen has broken the operator's terminal. So the guard
//! restores on drop (normal return, `?` error, unwinding), and a panic hook restores before
//! the panic message is printed, so the message lands on the normal screen where it can be
//! read.

use std::io::{stdout, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Backend = CrosstermBackend<Stdout>;

/// The terminal, in the console's mode while this lives.
pub struct TerminalGuard {
    pub terminal: Terminal<Backend>,
    /// Dropped after `terminal`: restores the terminal.
    _restore: Restore,
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<Self> {
        // Whether the terminal still needs restoring; shared with the panic hook, so that the
        // two never restore twice and a panic after the console ended touches nothing.
        let active = Arc::new(AtomicBool::new(true));
        let hook_active = active.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if hook_active.swap(false, Ordering::SeqCst) {
                restore();
            }
            previous(info);
        }));
        // From here on, a step that fails drops `restore`, which undoes what was done.
        let restore = Restore(active);
        enable_raw_mode()?;
        execute!(stdout(), EnterAlternateScreen, Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok(Self {
            terminal,
            _restore: restore,
        })
    }
}

/// Restores the terminal when dropped, unless the panic hook already did.
struct Restore(Arc<AtomicBool>);

impl Drop for Restore {
    fn drop(&mut self) {
        if self.0.swap(false, Ordering::SeqCst) {
            restore();
        }
    }
}

/// Raw mode off first (it has the wider effect), then the main screen and the cursor back.
/// Errors are ignored: there is nowhere left to report them, and each step is still worth
/// trying.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}
