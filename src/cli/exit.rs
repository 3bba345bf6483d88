//! Exit codes (documented in README.md) and the error type every command returns.

use std::fmt;

/// Process exit codes. Each means one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Success; for `verify`, every image verified.
    Ok = 0,
    /// An error that is not about verification: bad key file, wrong password, I/O, refused write.
    Error = 1,
    /// Invalid command line (clap's code).
    Usage = 2,
    /// `verify`: an image has no signatures at all.
    NoSignatures = 10,
    /// The image or tag does not exist.
    ImageNotFound = 11,
    /// `verify`: signatures exist but none passed (verification said no).
    NoMatchingSignature = 12,
    /// `verify`: could not check (registry unreachable, auth failure, timeout, malformed data).
    CouldNotCheck = 14,
}

impl ExitCode {
    /// Severity used to combine several images: could-not-check beats a "no".
    pub fn severity(self) -> u8 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::NoSignatures => 1,
            ExitCode::NoMatchingSignature => 2,
            ExitCode::ImageNotFound => 3,
            ExitCode::Error => 4,
            ExitCode::CouldNotCheck => 5,
            ExitCode::Usage => 6,
        }
    }
}

/// A command failure: what failed, what to do about it, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: ExitCode,
    /// What failed.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with a hint.
    pub fn new(code: ExitCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { code, message: message.into(), hint: Some(hint.into()) }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}
