//! Refreshing the Sigstore trusted root through TUF (the edge: network and a cache folder).
//!
//! The TUF client is sigstore-trust-root's (with sigstore-tuf): it checks the signed
//! metadata chain from a pinned TUF root, then the trusted root target's hash. sigil adds only
//! where the cache lives and when the network is used: `sigil trusted-root update` refreshes
//! online; verification reads the cache offline, so it never waits on the network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sigstore_verify::trust_root::{
    SigningConfig as TufSigningConfig, TrustedRoot, TufBootstrap, TufConfig, SIGNING_CONFIG_TARGET, TRUSTED_ROOT_TARGET,
};

use crate::digest::Digest;

/// The public-good TUF repository.
pub const PUBLIC_GOOD_URL: &str = "https://tuf-repo-cdn.sigstore.dev";

/// Where TUF metadata and targets are cached: `SIGIL_TUF_CACHE`, else
/// `$XDG_CACHE_HOME/sigil/tuf`, else `~/.cache/sigil/tuf`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIGIL_TUF_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(p).join("sigil/tuf"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sigil/tuf"))
}

/// Which TUF repository: the public-good one, or a custom URL with its pinned root.json.
#[derive(Debug, Clone)]
pub enum Repository {
    /// tuf-repo-cdn.sigstore.dev, bootstrapped from the root shipped in the binary.
    PublicGood,
    /// Another repository (mirrors, private instances, tests).
    Custom {
        /// Base URL.
        url: String,
        /// Its TUF root.json, trusted on first use.
        root: Vec<u8>,
    },
}

impl Repository {
    fn config(&self, cache: &Path) -> TufConfig {
        let c = match self {
            Repository::PublicGood => TufConfig::production(),
            Repository::Custom { url, root } => TufConfig::custom(url.clone(), TufBootstrap::trusted(root)),
        };
        c.with_cache_dir(self.cache_folder(cache))
    }

    /// Each repository gets its own folder under the cache, named after its URL, so that two
    /// repositories never overwrite each other's metadata.
    pub fn cache_folder(&self, cache: &Path) -> PathBuf {
        let name: String = self
            .url()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        cache.join(name)
    }

    /// The repository URL.
    pub fn url(&self) -> &str {
        match self {
            Repository::PublicGood => PUBLIC_GOOD_URL,
            Repository::Custom { url, .. } => url,
        }
    }
}

/// Refreshes online (bounded by `timeout`) and returns the verified trusted root, and whether
/// the repository also publishes a signing configuration (cached beside it when it does).
pub async fn update(repo: &Repository, cache: &Path, timeout: Duration) -> Result<(TrustedRoot, Published), String> {
    let refresh = async {
        let root = TrustedRoot::from_tuf(repo.config(cache)).await.map_err(|e| e.to_string())?;
        // The same session's metadata is cached now: the signing configuration, when the
        // repository has that target, is fetched and verified against it.
        // A repository that does not list the target has none (older repositories): the
        // library flattens sigstore-tuf's `TargetNotFound` into text, matched here exactly.
        // Any other failure (a hash mismatch, say) is an error.
        let missing = format!("target {SIGNING_CONFIG_TARGET:?} is not listed by any trusted targets role");
        let config = match TufSigningConfig::from_tuf(repo.config(cache)).await {
            Ok(_) => Published::SigningConfig,
            Err(e) if e.to_string().contains(&missing) => Published::RootOnly,
            Err(e) => return Err(format!("signing configuration: {e}")),
        };
        Ok((root, config))
    };
    match tokio::time::timeout(timeout, refresh).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// What a TUF repository publishes besides its trusted root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// A signing configuration (`signing_config.v0.2.json`), cached.
    SigningConfig,
    /// Only the trusted root (older repositories).
    RootOnly,
}

/// The signing configuration from the TUF cache, without network, verified against the
/// cached metadata: its bytes (the caller parses them) and the cached file.
pub async fn cached_signing_config(repo: &Repository, cache: &Path) -> Result<(Vec<u8>, PathBuf), String> {
    let verified = TufSigningConfig::from_tuf(repo.config(cache).offline()).await.map_err(|e| e.to_string())?;
    let file = repo.cache_folder(cache).join("targets").join(SIGNING_CONFIG_TARGET);
    let bytes = read_small(&file, crate::signing_config::MAX_SIGNING_CONFIG_BYTES as u64)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    // The bytes read must be the ones just verified (not a file a concurrent update put there).
    let same = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| TufSigningConfig::from_json(t).ok())
        .is_some_and(|c| serde_json::to_value(&c).ok() == serde_json::to_value(&verified).ok());
    if !same {
        return Err(format!("{} is not the signing configuration just verified; run again", file.display()));
    }
    Ok((bytes, file))
}

/// The trusted root read from the TUF cache, with the cached file and the sha256 of its bytes.
pub struct Cached {
    /// The root, verified through the cached TUF metadata.
    pub root: TrustedRoot,
    /// The cached `trusted_root.json` it was read from.
    pub file: PathBuf,
    /// sha256 of that file's bytes.
    pub sha256: Digest,
}

/// The trusted root from the cache, without network: fails when there is no cache or its
/// metadata has expired.
pub async fn cached(repo: &Repository, cache: &Path) -> Result<Cached, String> {
    let root = TrustedRoot::from_tuf(repo.config(cache).offline()).await.map_err(|e| e.to_string())?;
    // The TUF client does not hand out the bytes it verified: read the cached target and
    // name its digest only when it is the root just verified (not a file a concurrent update
    // put there since).
    let file = repo.cache_folder(cache).join("targets").join(TRUSTED_ROOT_TARGET);
    let bytes = read_small(&file, crate::trust::MAX_TRUSTED_ROOT_BYTES as u64)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let same = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| TrustedRoot::from_json(t).ok())
        .is_some_and(|r| serde_json::to_value(&r).ok() == serde_json::to_value(&root).ok());
    if !same {
        return Err(format!("{} changed while it was read (a concurrent update?); run again", file.display()));
    }
    Ok(Cached { root, file, sha256: Digest::sha256(&bytes) })
}

fn read_small(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(buf)
}
