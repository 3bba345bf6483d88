//! Trust material for Sigstore verification: which trusted root is in use and where it came
//! from. This module is pure: it parses and describes. Choosing the root (a file, the TUF
//! cache, the embedded snapshot) and reading it is [`resolve`]'s, the one place any front end
//! (the CLI, the deploy gate) gets its trusted root from, so they all pick it the same way.

use serde::Serialize;
use sigstore_verify::trust_root::{SigstoreInstance, TrustedRoot};

use crate::digest::Digest;

mod resolve;
pub use resolve::{resolve, ResolveError, TrustRequest};

/// Where the trusted root came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TrustSource {
    /// The Sigstore public-good root compiled into the binary (a snapshot; may be stale).
    Embedded,
    /// A file given with `--trusted-root` or `SIGIL_TRUSTED_ROOT`.
    File {
        /// The path.
        path: String,
    },
    /// The TUF cache, verified offline (metadata not expired).
    Tuf {
        /// The TUF repository the cache came from.
        url: String,
        /// The cache folder.
        cache: String,
    },
}

/// A parsed trusted root and its provenance.
pub struct Trust {
    /// The root.
    pub root: TrustedRoot,
    /// Its source.
    pub source: TrustSource,
}

/// Where the trusted root in use came from, and the sha256 of the bytes it was parsed from:
/// what an auditor needs to see that a deploy gate's trust anchors were replaced. Serialised as
/// the `trustRoot` field of JSON output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum TrustOrigin {
    /// A file given as the trusted root (`--trusted-root` / `SIGIL_TRUSTED_ROOT`).
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
    /// The `trustRoot` value of JSON output.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A trusted root and where it came from, as [`resolve`] found it.
pub struct TrustInUse {
    /// The root.
    pub trust: Trust,
    /// Its origin and digest.
    pub origin: TrustOrigin,
}

/// Largest trusted root read.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 8 << 20;

/// Why trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("trusted root ({source_name}) is unusable: {reason}")]
pub struct TrustError {
    /// Where it came from.
    pub source_name: String,
    /// Why.
    pub reason: String,
}

/// Whether a parsed root can be used at all: every key and certificate parses, no log ID
/// twice, and no validity window that ends before it starts (a root that contradicts itself).
/// The verifier prepares the same material again for each bundle and fails closed the same way.
pub fn check_usable(root: &TrustedRoot) -> Result<(), String> {
    sigstore_verify::Verifier::new(root).map(drop).map_err(|e| e.to_string())
}

impl Trust {
    /// The embedded public-good root.
    pub fn embedded() -> Result<Self, TrustError> {
        let root = SigstoreInstance::PublicGood
            .embedded_trusted_root()
            .map_err(|e| TrustError { source_name: "embedded".into(), reason: e.to_string() })?;
        Ok(Trust { root, source: TrustSource::Embedded })
    }

    /// A root read from `path` (the bytes are given; reading is the caller's).
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, TrustError> {
        let err = |reason: String| TrustError { source_name: path.to_owned(), reason };
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(err(format!("larger than {MAX_TRUSTED_ROOT_BYTES} bytes")));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8".into()))?;
        let root = TrustedRoot::from_json(text).map_err(|e| err(e.to_string()))?;
        check_usable(&root).map_err(err)?;
        Ok(Trust { root, source: TrustSource::File { path: path.to_owned() } })
    }

    /// A root obtained through TUF.
    pub fn from_tuf(root: TrustedRoot, url: &str, cache: &str) -> Self {
        Trust { root, source: TrustSource::Tuf { url: url.to_owned(), cache: cache.to_owned() } }
    }

    /// A description for `sigil trusted-root show`.
    pub fn summary(&self) -> serde_json::Value {
        let fulcio = self.root.fulcio_certs().len();
        let tsas = self.root.tsa_authorities().len();
        let raw = serde_json::to_value(&self.root).unwrap_or(serde_json::Value::Null);
        let windows = |key: &str| -> Vec<serde_json::Value> {
            raw.get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            serde_json::json!({
                                "baseUrl": x.get("baseUrl").or_else(|| x.get("uri")),
                                "validFor": x.get("publicKey").and_then(|k| k.get("validFor")).or_else(|| x.get("validFor")),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        serde_json::json!({
            "source": self.source,
            "note": match self.source {
                TrustSource::Embedded => "embedded snapshot of the Sigstore public-good trusted root shipped with this sigil build; it does not refresh itself and may be stale: pass --trusted-root (or SIGIL_TRUSTED_ROOT) with a current trusted_root.json",
                TrustSource::File { .. } => "read from the given file",
                TrustSource::Tuf { .. } => "verified through TUF; read from the TUF cache, whose metadata has not expired",
            },
            "certificateAuthorities": fulcio,
            "timestampAuthorities": tsas,
            "tlogs": windows("tlogs"),
            "ctlogs": windows("ctlogs"),
        })
    }
}
