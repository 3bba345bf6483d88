//! Which trusted root a verification uses, decided in one place (the edge: it reads a file or
//! the TUF cache, each bounded in size). The order is the README's: a file given as the root;
//! else the TUF cache of the repository, verified offline; else, for the public-good repository
//! only, the snapshot embedded in this build. The result always says where the root came from
//! and the sha256 of its bytes.
//!
//! Async because the TUF client is; it starts no runtime of its own, so a front end that
//! already runs one (the deploy gate) calls it as it is.

use std::io::Read;
use std::path::{Path, PathBuf};

use sigstore_verify::trust_root::SigstoreInstance;

use super::{Trust, TrustError, TrustInUse, TrustOrigin, MAX_TRUSTED_ROOT_BYTES};
use crate::digest::Digest;
use crate::tuf::Repository;

/// Which trusted root to use, as asked for (nothing read yet).
#[derive(Debug, Clone)]
pub enum TrustRequest {
    /// A `trusted_root.json` file, used as given (`--trusted-root`, `SIGIL_TRUSTED_ROOT`).
    File(PathBuf),
    /// The cached root of a TUF repository, verified offline against the cached metadata.
    /// When there is no usable cache, the public-good repository falls back to the embedded
    /// root (its origin says why); any other repository is an error, since the embedded root
    /// is public-good's and never a stand-in for another instance.
    TufCache {
        /// The repository (its URL and pinned root).
        repository: Repository,
        /// The cache folder ([`crate::tuf::cache_dir`]); `None` when there is none.
        cache: Option<PathBuf>,
    },
    /// The public-good root embedded in this build, without looking at any cache.
    Embedded,
}

/// Why no trusted root could be chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The file given as the trusted root could not be read.
    #[error("cannot read trusted root {path}: {reason}")]
    Read {
        /// The file as given.
        path: String,
        /// The I/O error.
        reason: std::io::Error,
    },
    /// The file is larger than [`MAX_TRUSTED_ROOT_BYTES`].
    #[error("trusted root {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file as given.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// The file was read but is not a usable trusted root.
    #[error(transparent)]
    Unusable(TrustError),
    /// A repository other than public-good has no usable cache.
    #[error("no usable trusted root for the TUF repository {url}: {why}")]
    NoTufRoot {
        /// The repository.
        url: String,
        /// Why its cache was not used.
        why: String,
    },
    /// The root compiled into this build does not parse (a build defect).
    #[error(transparent)]
    Embedded(TrustError),
}

/// The trusted root `request` names, and where it came from.
pub async fn resolve(request: &TrustRequest) -> Result<TrustInUse, ResolveError> {
    match request {
        TrustRequest::File(p) => from_file(p),
        TrustRequest::Embedded => embedded("the embedded root was asked for".to_owned()),
        TrustRequest::TufCache { repository, cache } => {
            let why = match cache {
                Some(cache) if repository.cache_folder(cache).is_dir() => {
                    let folder = repository.cache_folder(cache);
                    match crate::tuf::cached(repository, cache).await {
                        Ok(c) => {
                            let trust = Trust::from_tuf(c.root, repository.url(), &folder.display().to_string());
                            let origin = TrustOrigin::TufCache {
                                path: c.file.display().to_string(),
                                url: repository.url().to_owned(),
                                sha256: c.sha256,
                            };
                            return Ok(TrustInUse { trust, origin });
                        }
                        Err(e) => format!("the TUF cache {} is unusable or STALE ({e})", folder.display()),
                    }
                }
                _ => "no TUF cache".to_owned(),
            };
            match repository {
                Repository::PublicGood => embedded(why),
                Repository::Custom { url, .. } => Err(ResolveError::NoTufRoot { url: url.clone(), why }),
            }
        }
    }
}

fn from_file(p: &Path) -> Result<TrustInUse, ResolveError> {
    let path = p.display().to_string();
    let bytes = read_limited(p, MAX_TRUSTED_ROOT_BYTES).map_err(|e| match e {
        Limited::Io(reason) => ResolveError::Read { path: path.clone(), reason },
        Limited::TooLarge => ResolveError::TooLarge { path: path.clone(), limit: MAX_TRUSTED_ROOT_BYTES },
    })?;
    let trust = Trust::from_bytes(&bytes, &path).map_err(ResolveError::Unusable)?;
    Ok(TrustInUse { trust, origin: TrustOrigin::File { path, sha256: Digest::sha256(&bytes) } })
}

fn embedded(why: String) -> Result<TrustInUse, ResolveError> {
    let trust = Trust::embedded().map_err(ResolveError::Embedded)?;
    let json = SigstoreInstance::PublicGood.embedded_trusted_root_json();
    Ok(TrustInUse { trust, origin: TrustOrigin::Embedded { sha256: Digest::sha256(json.as_bytes()), why } })
}

enum Limited {
    Io(std::io::Error),
    TooLarge,
}

/// At most `limit` bytes of `path`; one byte more is refused, not cut off.
fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, Limited> {
    let mut buf = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut buf)).map_err(Limited::Io)?;
    if buf.len() > limit {
        return Err(Limited::TooLarge);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn public_good_without_cache_falls_back_to_embedded_and_says_why() {
        let r = run(resolve(&TrustRequest::TufCache { repository: Repository::PublicGood, cache: None })).unwrap();
        assert!(matches!(r.origin, TrustOrigin::Embedded { ref why, .. } if why == "no TUF cache"), "{:?}", r.origin);
        let empty = tempfile::tempdir().unwrap();
        let r = run(resolve(&TrustRequest::TufCache {
            repository: Repository::PublicGood,
            cache: Some(empty.path().to_owned()),
        }))
        .unwrap();
        assert!(matches!(r.origin, TrustOrigin::Embedded { .. }));
        let e = run(resolve(&TrustRequest::Embedded)).unwrap();
        assert_eq!(e.origin.to_json()["source"], "embedded");
    }

    #[test]
    fn another_repository_never_falls_back_to_the_embedded_root() {
        let repository = Repository::Custom { url: "https://tuf.example".into(), root: b"{}".to_vec() };
        let e = run(resolve(&TrustRequest::TufCache { repository, cache: None })).err().unwrap();
        assert!(matches!(e, ResolveError::NoTufRoot { .. }), "{e}");
        assert!(e.to_string().contains("https://tuf.example: no TUF cache"), "{e}");
    }

    #[test]
    fn a_file_is_named_with_its_digest_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.json");
        let json = SigstoreInstance::PublicGood.embedded_trusted_root_json();
        std::fs::write(&path, json.as_bytes()).unwrap();
        let r = run(resolve(&TrustRequest::File(path.clone()))).unwrap();
        assert_eq!(
            r.origin,
            TrustOrigin::File { path: path.display().to_string(), sha256: Digest::sha256(json.as_bytes()) }
        );
        std::fs::write(&path, b"{}").unwrap();
        assert!(matches!(run(resolve(&TrustRequest::File(path.clone()))), Err(ResolveError::Unusable(_))));
        std::fs::write(&path, vec![b' '; MAX_TRUSTED_ROOT_BYTES + 1]).unwrap();
        assert!(matches!(run(resolve(&TrustRequest::File(path))), Err(ResolveError::TooLarge { .. })));
        let gone = dir.path().join("missing.json");
        assert!(matches!(run(resolve(&TrustRequest::File(gone))), Err(ResolveError::Read { .. })));
    }
}
