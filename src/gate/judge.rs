//! The gate's [`Judge`]: one compiled policy, its trust material, and where the images'
//! repositories are reached ([`Stores`]: registries with the Docker config's credentials).
//! Also the reader of the files a policy names ([`PolicyFiles`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::evaluate::{evaluate, Limits};
use super::{Decision, Judge, Outcome, ResolveError};
use crate::digest::Digest;
use crate::oci::auth::{self, Credentials};
use crate::oci::registry::{Connection, RegistryOptions, RegistryStore};
use crate::oci::{ManifestRef, Store, StoreError};
use crate::policy::{file::FileKind, Files, ImagePolicy};
use crate::reference::{RegistryRef, Selector};
use crate::trust::Trust;

/// Largest key or trusted root a policy may name.
pub const MAX_POLICY_FILE_BYTES: u64 = 1 << 20;

/// Reads the files a policy names, relative to the policy file's folder, bounded.
pub struct PolicyFiles {
    base: PathBuf,
}

impl PolicyFiles {
    /// Files relative to `base` (the policy file's folder).
    pub fn new(base: PathBuf) -> Self {
        PolicyFiles { base }
    }
}

impl Files for PolicyFiles {
    fn read(&self, path: &str, kind: FileKind) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let full = self.base.join(path);
        let what = match kind {
            FileKind::PublicKey => "public key",
            FileKind::TrustedRoot => "trusted root",
        };
        let f = std::fs::File::open(&full).map_err(|e| format!("{path}: cannot read the {what}: {e}"))?;
        let mut bytes = Vec::new();
        f.take(MAX_POLICY_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{path}: {e}"))?;
        if bytes.len() as u64 > MAX_POLICY_FILE_BYTES {
            return Err(format!("{path}: the {what} is larger than {MAX_POLICY_FILE_BYTES} bytes"));
        }
        Ok(bytes)
    }
}

/// Where an image's repository is read (its signatures and attestations live there too).
pub trait Stores: Send + Sync + 'static {
    /// The store type.
    type Store: Store + Send + Sync;
    /// The store for `image`'s repository.
    fn store(&self, image: &RegistryRef) -> Result<Self::Store, StoreError>;
}

/// Registries, reached with one connection and the Docker config's credentials (looked up
/// once per registry, sent only to that registry).
pub struct RegistryStores {
    conn: Connection,
    timeout: std::time::Duration,
    creds: Mutex<BTreeMap<String, Credentials>>,
}

impl RegistryStores {
    /// Connects with `opts`.
    pub fn new(opts: &RegistryOptions) -> Result<Self, StoreError> {
        Ok(RegistryStores { conn: Connection::new(opts)?, timeout: opts.timeout, creds: Mutex::new(BTreeMap::new()) })
    }

    fn credentials(&self, registry: &str) -> Result<Credentials, StoreError> {
        let mut cache = self.creds.lock().map_err(|_| StoreError::Transport("credential cache poisoned".into()))?;
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let c = auth::from_docker_config(registry).map_err(|e| StoreError::Auth(e.to_string()))?;
        cache.insert(registry.to_owned(), c.clone());
        Ok(c)
    }
}

impl Stores for RegistryStores {
    type Store = RegistryStore;
    fn store(&self, image: &RegistryRef) -> Result<RegistryStore, StoreError> {
        let creds = self.credentials(image.registry())?;
        Ok(RegistryStore::new(self.conn.clone(), &creds, image.registry(), image.repository(), self.timeout))
    }
}

/// A policy, ready to judge images.
pub struct PolicyJudge<R: Stores> {
    policy: ImagePolicy,
    default_trust: Option<Arc<Trust>>,
    stores: R,
    limits: Limits,
}

impl<R: Stores> PolicyJudge<R> {
    /// Judges with `policy`; `default_trust` serves rules that name no trusted root.
    pub fn new(policy: ImagePolicy, default_trust: Option<Arc<Trust>>, stores: R, limits: Limits) -> Self {
        PolicyJudge { policy, default_trust, stores, limits }
    }

    /// The policy.
    pub fn policy(&self) -> &ImagePolicy {
        &self.policy
    }
}

impl<R: Stores> Judge for PolicyJudge<R> {
    fn policy_digest(&self) -> &Digest {
        &self.policy.digest
    }

    async fn resolve(&self, image: &RegistryRef) -> Result<Digest, ResolveError> {
        let tag = match image.selector() {
            Selector::Digest(d) | Selector::TagAndDigest(_, d) => return Ok(d.clone()),
            Selector::Tag(t) => t,
        };
        let unreachable =
            |e: &dyn std::fmt::Display| ResolveError::Unreachable { image: image.to_string(), reason: e.to_string() };
        let store = self.stores.store(image).map_err(|e| unreachable(&e))?;
        match store.get_manifest(&ManifestRef::Tag(tag.clone())).await {
            Ok(Some(m)) => Ok(m.digest),
            Ok(None) => Err(ResolveError::NotFound(image.to_string())),
            Err(e) => Err(unreachable(&e)),
        }
    }

    async fn judge(&self, image: &RegistryRef, digest: &Digest) -> Decision {
        let store = match self.stores.store(image) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .unresolved(image, &ResolveError::Unreachable { image: image.to_string(), reason: e.to_string() })
            }
        };
        evaluate(&store, image, digest, &self.policy, self.default_trust.as_deref(), self.limits).await
    }

    fn without_registry(&self, image: &RegistryRef) -> Option<Decision> {
        let name = image.name();
        if self.policy.rule_for(&name).is_some() {
            return None;
        }
        Some(super::evaluate::unmatched(image.to_string(), None, &name, self.policy.default))
    }

    fn unresolved(&self, image: &RegistryRef, error: &ResolveError) -> Decision {
        let Some(rule) = self.policy.rule_for(&image.name()) else {
            // Not reached through `decide` (an image no rule matches needs no registry).
            return super::evaluate::unmatched(image.to_string(), None, &image.name(), self.policy.default);
        };
        let (rule, mode) = (Some(rule.name.clone()), rule.mode);
        match error {
            ResolveError::NotFound(_) => Decision {
                outcome: Outcome::Failed { reasons: vec![error.to_string()] },
                ..Decision::could_not_check(&image.to_string(), rule, mode, String::new())
            },
            ResolveError::Unreachable { .. } => {
                Decision::could_not_check(&image.to_string(), rule, mode, error.to_string())
            }
        }
    }
}
