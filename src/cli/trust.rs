//! Which Sigstore trust material a command uses: loaded once, and always named. Every command
//! that verifies against a trusted root says on stderr where the root came from and the sha256
//! of its bytes, and puts the same in its JSON output (`trustRoot`), so that an auditor can
//! see when a deploy gate's trust anchors were replaced (`--trusted-root` or
//! `SIGIL_TRUSTED_ROOT` pointing elsewhere).

use serde::Serialize;
use sigil::digest::Digest;
use sigil::trust::Trust;

use super::exit::{ExitCode, Failure};
use super::files::{read_bounded, runtime};
use super::TrustArgs;

/// Where the trusted root in use came from, and the sha256 of the bytes it was parsed from.
/// Serialised as the `trustRoot` field of JSON output.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum TrustOrigin {
    /// `--trusted-root` / `SIGIL_TRUSTED_ROOT`.
    File {
        /// The file as given.
        path: String,
        /// Its sha256.
        sha256: Digest,
    },
    /// The TUF cache, verified offline.
    TufCache {
        /// The cached `trusted_root.json`.
        path: String,
        /// The TUF repository it came from.
        url: String,
        /// The file's sha256.
        sha256: Digest,
    },
    /// The public-good root compiled into this build (a snapshot that may be stale).
    Embedded {
        /// sha256 of the embedded JSON.
        sha256: Digest,
        /// Why the TUF cache was not used.
        #[serde(skip)]
        why: String,
    },
}

impl TrustOrigin {
    /// Says on stderr which trusted root is in use: one line, printed once per command.
    fn announce(&self) {
        match self {
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

    /// The `trustRoot` value of JSON output.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A trusted root and where it came from.
pub struct TrustInUse {
    /// The root.
    pub trust: Trust,
    /// Its origin and digest.
    pub origin: TrustOrigin,
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
    let loaded = choose(args)?;
    loaded.origin.announce();
    Ok(loaded)
}

fn choose(args: &TrustArgs) -> Result<TrustInUse, Failure> {
    if let Some(p) = &args.trusted_root {
        let bytes = read_bounded(p, sigil::trust::MAX_TRUSTED_ROOT_BYTES as u64, "trusted root")?;
        let path = p.display().to_string();
        // Without usable trust material nothing can be checked: "could not check".
        let trust = Trust::from_bytes(&bytes, &path).map_err(|e| {
            Failure::new(
                ExitCode::CouldNotCheck,
                e.to_string(),
                "pass a Sigstore trusted_root.json (protobuf-specs TrustedRoot JSON)",
            )
        })?;
        return Ok(TrustInUse { trust, origin: TrustOrigin::File { path, sha256: Digest::sha256(&bytes) } });
    }
    let repo = tuf_repository(args)?;
    let custom = matches!(repo, sigil::tuf::Repository::Custom { .. });
    let cache = sigil::tuf::cache_dir();
    let why = match &cache {
        Some(cache) if repo.cache_folder(cache).is_dir() => {
            let folder = repo.cache_folder(cache);
            match runtime()?.block_on(sigil::tuf::cached(&repo, cache)) {
                Ok(c) => {
                    let trust = Trust::from_tuf(c.root, repo.url(), &folder.display().to_string());
                    let origin = TrustOrigin::TufCache {
                        path: c.file.display().to_string(),
                        url: repo.url().to_owned(),
                        sha256: c.sha256,
                    };
                    return Ok(TrustInUse { trust, origin });
                }
                Err(e) => format!("the TUF cache {} is unusable or STALE ({e})", folder.display()),
            }
        }
        _ => "no TUF cache".to_owned(),
    };
    if custom {
        // The embedded root is the public-good instance's: never a stand-in for another one.
        return Err(Failure::new(
            ExitCode::CouldNotCheck,
            format!("no usable trusted root for the TUF repository {}: {why}", repo.url()),
            "run `sigil trusted-root update` with the same --tuf-url and --tuf-root, or pass --trusted-root",
        ));
    }
    let trust = Trust::embedded().map_err(|e| Failure::new(ExitCode::Error, e.to_string(), "report this bug"))?;
    let json = sigstore_verify::trust_root::SigstoreInstance::PublicGood.embedded_trusted_root_json();
    Ok(TrustInUse { trust, origin: TrustOrigin::Embedded { sha256: Digest::sha256(json.as_bytes()), why } })
}
