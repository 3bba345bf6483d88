//! stdout, written in one place. Rust ignores SIGPIPE, so a reader that went away
//! (`sigil verify … | head -1`) makes every later write fail with `BrokenPipe`, and `println!`
//! would panic on it. Here that is quiet: what is left to print is dropped, the command
//! finishes, and its exit code is its own (0 when all went well). The code is not forced to 0
//! at the broken pipe: `sigil verify good bad | head -1` must not report that `bad` verified.
//! Any other write error (a full disk) is reported once, at the end, and fails the command.
//!
//! Commands print with [`outln!`](crate::cli::stdout::outln) or [`write_all`]; `println!` is
//! refused by clippy in `cli` (see `cli/mod.rs`).

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use super::exit::{ExitCode, Failure};

/// Everything written so far reached stdout.
const OPEN: u8 = 0;
/// The reader went away: later output is dropped.
const READER_GONE: u8 = 1;
/// Another write error: later output is dropped and the command fails at the end.
const FAILED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(OPEN);
static FIRST_ERROR: OnceLock<String> = OnceLock::new();

/// Prints one line on stdout (as `println!`, without its panic).
macro_rules! outln {
    () => {
        $crate::cli::stdout::write_all(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout::write_all(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub(crate) use outln;

/// Writes `bytes` to stdout and flushes. Dropped once the reader has gone or a write failed;
/// [`finish`] reports a failure.
pub(crate) fn write_all(bytes: &[u8]) {
    if STATE.load(Ordering::Relaxed) != OPEN {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        record(&e);
    }
}

/// Whether stdout still takes output: long outputs (downloads) stop early when it does not.
pub(crate) fn is_open() -> bool {
    STATE.load(Ordering::Relaxed) == OPEN
}

fn record(e: &std::io::Error) {
    if e.kind() == ErrorKind::BrokenPipe {
        STATE.store(READER_GONE, Ordering::Relaxed);
    } else {
        let _ = FIRST_ERROR.set(e.to_string());
        STATE.store(FAILED, Ordering::Relaxed);
    }
}

/// The outcome of a command once its output is flushed: a write error other than a broken
/// pipe turns success into a failure (what was printed is incomplete).
pub(crate) fn finish(outcome: Result<ExitCode, Failure>) -> Result<ExitCode, Failure> {
    if STATE.load(Ordering::Relaxed) == OPEN {
        if let Err(e) = std::io::stdout().lock().flush() {
            record(&e);
        }
    }
    match (STATE.load(Ordering::Relaxed), outcome) {
        (FAILED, Ok(_)) => Err(Failure::new(
            ExitCode::Error,
            format!("could not write to stdout: {}", FIRST_ERROR.get().map_or("unknown error", String::as_str)),
            "what was printed is incomplete; check the disk or pipe and run again",
        )),
        (_, outcome) => outcome,
    }
}
