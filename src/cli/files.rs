//! The CLI's file and runtime edge: every file sigil reads is read through `read_bounded`.

use std::io::Read;
use std::path::Path;

use super::exit::{ExitCode, Failure};

/// Reads at most `limit` bytes of `path`; a larger file is an error naming `what`.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(ExitCode::Error, format!("cannot read {what} {}: {e}", path.display()), "check the path")
    };
    let f = std::fs::File::open(path).map_err(fail)?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(fail)?;
    if buf.len() as u64 > limit {
        return Err(Failure::new(
            ExitCode::Error,
            format!("{what} {} is larger than {limit} bytes", path.display()),
            "check that this is the right file",
        ));
    }
    Ok(buf)
}

/// The async runtime: one thread, since the work is I/O-bound and not spawning workers saves
/// start-up time.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        Failure::new(ExitCode::Error, format!("cannot start the async runtime: {e}"), "check system resources")
    })
}

/// The clock, read at the edge: seconds since the Unix epoch (the `created` time of what is
/// signed).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
