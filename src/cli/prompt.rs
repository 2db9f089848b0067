//! Password prompts on the terminal. `rpassword` turns echo off while it reads; if chatd were
//! killed at the prompt (Ctrl-C, Ctrl-\, a hang-up) the terminal would stay without echo. While
//! a prompt is up, those signals restore the terminal as it was, then end chatd with status 1.

use std::os::fd::AsRawFd as _;
use std::sync::OnceLock;

/// The controlling terminal and its settings before the first prompt.
static TERMINAL: OnceLock<(libc::c_int, libc::termios)> = OnceLock::new();

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn interrupted(_: libc::c_int) {
    const MESSAGE: &[u8] = b"\nchatd: error: interrupted\n";
    // Only async-signal-safe calls here: tcsetattr, write, _exit.
    unsafe {
        if let Some((fd, settings)) = TERMINAL.get() {
            libc::tcsetattr(*fd, libc::TCSANOW, settings);
        }
        libc::write(libc::STDERR_FILENO, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(super::EXIT_FAILURE.into());
    }
}

/// Reads a line from the terminal without echo, after writing `prompt`.
pub fn hidden(prompt: &str) -> std::io::Result<String> {
    if TERMINAL.get().is_none() {
        // Kept open for the process's life: the handler restores the terminal through it.
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        let fd = tty.as_raw_fd();
        let mut settings = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the struct when it returns 0.
        if unsafe { libc::tcgetattr(fd, settings.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::mem::forget(tty);
        let _ = TERMINAL.set((fd, unsafe { settings.assume_init() }));
    }
    let handler = interrupted as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let previous: Vec<_> = SIGNALS
        .iter()
        .map(|&s| {
            // SAFETY: the handler only makes async-signal-safe calls. A signal the parent
            // chose to ignore (nohup's SIGHUP) stays ignored.
            let before = unsafe { libc::signal(s, handler) };
            if before == libc::SIG_IGN {
                unsafe { libc::signal(s, libc::SIG_IGN) };
            }
            (s, before)
        })
        .collect();
    let line = rpassword::prompt_password(prompt);
    for (s, before) in previous {
        // SAFETY: puts back what was there.
        unsafe { libc::signal(s, before) };
    }
    line
}
