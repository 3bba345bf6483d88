//! The webhook's two caches: tag → digest, and (repository, digest, policy digest) → decision.
//!
//! Why this module exists: the API server asks about the same images again and again (every
//! replica of a ReplicaSet, every retry, both webhooks), and a verification costs registry
//! round trips. Both caches are bounded in entries and in time, and coalesce: concurrent
//! lookups of a missing key share ONE resolution or verification (moka's `entry().or_try_
//! insert_with`), so a burst of identical reviews makes one set of registry requests.
//!
//! What it must never do: keep a verdict that could not be checked, or a resolution that
//! failed. Those are returned to the requests that were waiting for them and forgotten, so a
//! registry outage ends when the registry comes back. The repository is part of the verdict
//! key because signatures live in the repository: the same digest pushed elsewhere is judged
//! again. The policy digest is part of it so a reloaded policy never sees an old verdict.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::metrics::{CacheKind, Lookup, Metrics, ResolveFailure};
use super::{Decision, Judge, Outcome, ResolveError};
use crate::digest::Digest;
use crate::reference::RegistryRef;

/// Sizes and lifetimes of the caches.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Most verdicts kept.
    pub verdicts: u64,
    /// How long a verdict that admits is kept.
    pub verdict_ttl: Duration,
    /// How long a verdict that refuses is kept (at most `verdict_ttl`): short, so an image
    /// signed just after a refused deployment is admitted on the retry.
    pub denied_ttl: Duration,
    /// Most tag resolutions kept.
    pub digests: u64,
    /// How long a tag resolution is kept (a tag can move).
    pub digest_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            verdicts: 10_000,
            verdict_ttl: Duration::from_secs(300),
            denied_ttl: Duration::from_secs(30),
            digests: 10_000,
            digest_ttl: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VerdictKey {
    /// `registry/repository`.
    repository: String,
    digest: Digest,
    policy: Digest,
}

/// How long a verdict is kept: a pass for the verdict TTL, a "no" for the shorter denied TTL.
struct VerdictExpiry {
    passed: Duration,
    failed: Duration,
}

impl moka::Expiry<VerdictKey, Arc<Decision>> for VerdictExpiry {
    fn expire_after_create(&self, _: &VerdictKey, d: &Arc<Decision>, _: std::time::Instant) -> Option<Duration> {
        Some(match d.outcome() {
            Outcome::Passed => self.passed,
            Outcome::Failed { .. } | Outcome::CouldNotCheck { .. } => self.failed,
        })
    }
}

/// Decisions about images, cached and coalesced.
pub struct Verdicts {
    verdicts: Cache<VerdictKey, Arc<Decision>>,
    digests: Cache<String, Digest>,
    metrics: Arc<Metrics>,
}

impl Verdicts {
    /// Empty caches of the given bounds, counting into `metrics`.
    pub fn new(config: CacheConfig, metrics: Arc<Metrics>) -> Self {
        Verdicts {
            verdicts: Cache::builder()
                .max_capacity(config.verdicts)
                .expire_after(VerdictExpiry {
                    passed: config.verdict_ttl,
                    failed: config.denied_ttl.min(config.verdict_ttl),
                })
                .build(),
            digests: Cache::builder().max_capacity(config.digests).time_to_live(config.digest_ttl).build(),
            metrics,
        }
    }

    /// Forgets every verdict (after a policy reload: the old policy's verdicts can never be
    /// asked for again, so they only take room).
    pub fn forget_verdicts(&self) {
        self.verdicts.invalidate_all();
    }

    /// The decision about `image` under `judge`'s policy: its digest (the reference's own,
    /// else the cached or freshly resolved tag), then the cached or fresh verdict.
    pub async fn decide<J: Judge>(&self, judge: &J, image: &RegistryRef) -> Decision {
        if let Some(d) = judge.without_registry(image) {
            return d;
        }
        let digest = match self.digest_of(judge, image).await {
            Ok(d) => d,
            Err(e) => return judge.unresolved(image, &e),
        };
        let key = VerdictKey { repository: image.name(), digest, policy: judge.policy_digest().clone() };
        let entry = self
            .verdicts
            .entry(key.clone())
            .or_try_insert_with(async {
                let decision = judge.judge(image, &key.digest).await;
                match decision.outcome() {
                    // Not cached: the next review asks again.
                    Outcome::CouldNotCheck { .. } => Err(decision),
                    Outcome::Passed | Outcome::Failed { .. } => Ok(Arc::new(decision)),
                }
            })
            .await;
        match entry {
            Ok(entry) => {
                self.metrics.cache(CacheKind::Verdict, if entry.is_fresh() { Lookup::Miss } else { Lookup::Hit });
                Decision::clone(&entry.into_value())
            }
            Err(unchecked) => {
                self.metrics.cache(CacheKind::Verdict, Lookup::Miss);
                Decision::clone(&unchecked)
            }
        }
    }

    async fn digest_of<J: Judge>(&self, judge: &J, image: &RegistryRef) -> Result<Digest, ResolveError> {
        if let Some(d) = image.selector().digest() {
            return Ok(d.clone());
        }
        let entry = self
            .digests
            .entry(image.to_string())
            .or_try_insert_with(async {
                judge.resolve(image).await.inspect_err(|e| {
                    self.metrics.registry_error(match e {
                        ResolveError::NotFound(_) => ResolveFailure::NotFound,
                        ResolveError::Unreachable { .. } => ResolveFailure::Unreachable,
                    })
                })
            })
            .await;
        match entry {
            Ok(entry) => {
                self.metrics.cache(CacheKind::Digest, if entry.is_fresh() { Lookup::Miss } else { Lookup::Hit });
                Ok(entry.into_value())
            }
            Err(e) => {
                self.metrics.cache(CacheKind::Digest, Lookup::Miss);
                Err(ResolveError::clone(&e))
            }
        }
    }
}
