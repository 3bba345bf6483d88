//! Which Sigstore trust material a command uses, as the flags ask for it: the choice itself is
//! the library's ([`sigil::trust::resolve`]); this file turns the flags into a request, runs it,
//! and says on stderr where the root came from with the sha256 of its bytes (JSON output carries
//! the same as `trustRoot`), so that an auditor can see when a deploy gate's trust anchors were
//! replaced (`--trusted-root` or `SIGIL_TRUSTED_ROOT` pointing elsewhere).

use sigil::trust::{ResolveError, TrustRequest};
pub use sigil::trust::{TrustInUse, TrustOrigin};

use super::exit::{ExitCode, Failure};
use super::files::{read_bounded, runtime};
use super::TrustArgs;

/// Says on stderr which trusted root is in use: one line, printed once per command.
fn announce(origin: &TrustOrigin) {
    match origin {
        TrustOrigin::File { path, sha256 } => {
            eprintln!("note: trusted root from the file {path} ({sha256}), as given (--trusted-root / SIGIL_TRUSTED_ROOT)")
        }
        TrustOrigin::TufCache { path, url, sha256 } => {
            eprintln!("note: trusted root from the TUF cache {path} ({sha256}), verified offline for {url}")
        }
        TrustOrigin::Embedded { sha256, why } => eprintln!(
            "note: using the Sigstore public-good trusted root embedded in this build ({sha256}), a snapshot that may be STALE: {why}; run `sigil trusted-root update` where the network allows, or pass --trusted-root"
        ),
    }
}

/// The TUF repository named by the flags: `--tuf-url` with `--tuf-root`, else public-good.
pub fn tuf_repository(args: &TrustArgs) -> Result<sigil::tuf::Repository, Failure> {
    match (&args.tuf_url, &args.tuf_root) {
        (Some(url), Some(root)) => Ok(sigil::tuf::Repository::Custom {
            url: url.clone(),
            root: read_bounded(root, sigil::trust::MAX_TRUSTED_ROOT_BYTES as u64, "TUF root")?,
        }),
        _ => Ok(sigil::tuf::Repository::PublicGood),
    }
}

/// The trust material: `--trusted-root` / `SIGIL_TRUSTED_ROOT`; else the TUF cache, read
/// offline; else the root embedded in the binary. stderr says which (and why, for the
/// embedded one), with the sha256 of the root's bytes.
pub fn load_trust(args: &TrustArgs) -> Result<TrustInUse, Failure> {
    let request = match &args.trusted_root {
        Some(p) => TrustRequest::File(p.clone()),
        None => TrustRequest::TufCache { repository: tuf_repository(args)?, cache: sigil::tuf::cache_dir() },
    };
    let loaded = runtime()?.block_on(sigil::trust::resolve(&request)).map_err(failure)?;
    announce(&loaded.origin);
    Ok(loaded)
}

fn failure(e: ResolveError) -> Failure {
    let (code, hint) = match &e {
        ResolveError::Read { .. } => (ExitCode::Error, "check the path"),
        ResolveError::TooLarge { .. } => (ExitCode::Error, "check that this is the right file"),
        // Without usable trust material nothing can be checked: "could not check".
        ResolveError::Unusable(_) => {
            (ExitCode::CouldNotCheck, "pass a Sigstore trusted_root.json (protobuf-specs TrustedRoot JSON)")
        }
        ResolveError::NoTufRoot { .. } => (
            ExitCode::CouldNotCheck,
            "run `sigil trusted-root update` with the same --tuf-url and --tuf-root, or pass --trusted-root",
        ),
        ResolveError::Embedded(_) => (ExitCode::Error, "report this bug"),
        _ => (ExitCode::CouldNotCheck, "pass --trusted-root with a current trusted_root.json"),
    };
    Failure::new(code, e.to_string(), hint)
}
