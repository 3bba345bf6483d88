//! Where images and their attachments live: a registry or a local OCI image layout.
//!
//! The signing and verification flows see only the [`Store`] trait: fetch a manifest by tag or
//! digest, fetch a blob (bounded, digest-checked), push a blob, push a manifest under a tag.
//! A store is bound to one repository. [`manifest`] is the pure data model.

pub mod auth;
pub mod challenge;
pub mod layout;
pub mod manifest;
pub mod registry;
pub mod tls;

use std::future::Future;

use crate::digest::Digest;

/// A manifest selector within a store's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(Digest),
}

impl std::fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestRef::Tag(t) => write!(f, ":{t}"),
            ManifestRef::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// Manifest bytes as fetched, with their digest (always computed locally).
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// The bytes, at most [`manifest::MAX_MANIFEST_BYTES`].
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl RawManifest {
    /// Wraps bytes, computing the digest.
    pub fn new(bytes: Vec<u8>) -> Self {
        let digest = Digest::sha256(&bytes);
        RawManifest { bytes, digest }
    }
}

/// Errors talking to a store. All of them mean "could not check".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Network, TLS or protocol failure.
    #[error("registry request failed: {0}")]
    Transport(String),
    /// Credentials refused or missing.
    #[error("registry refused access: {0}")]
    Auth(String),
    /// A TLS registry named a plain-HTTP token service: credentials and the token would cross
    /// the network in cleartext, so nothing was sent.
    #[error("registry {registry} names the plain-HTTP token service {realm}: refusing to send credentials or accept a token over it")]
    InsecureRealm {
        /// The registry.
        registry: String,
        /// The token service it named (`realm`).
        realm: String,
    },
    /// The request did not finish in time.
    #[error("registry request timed out after {0} s")]
    Timeout(u64),
    /// More bytes than allowed.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Content does not hash to its digest.
    #[error("content of {0} does not match its digest")]
    DigestMismatch(Digest),
    /// A blob that should exist does not.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// Local file-system problem (OCI layout).
    #[error("{0}")]
    Io(String),
    /// A malformed layout or registry answer.
    #[error("malformed data: {0}")]
    Malformed(String),
    /// An OCI layout sigil will not read (or could not read in time).
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
}

/// A file to upload as a blob, hashed beforehand (the upload streams it from disk).
#[derive(Debug, Clone)]
pub struct BlobFile {
    /// Where it is.
    pub path: std::path::PathBuf,
    /// Its sha256 (checked again by the store while writing).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

impl BlobFile {
    /// Hashes the file at `path` in bounded chunks; refuses files over `limit` bytes.
    pub fn hash(path: &std::path::Path, limit: u64) -> Result<Self, StoreError> {
        use sha2::Digest as _;
        use std::io::Read;
        let io = |e: std::io::Error| StoreError::Io(format!("reading {}: {e}", path.display()));
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limit {
                return Err(StoreError::TooLarge { what: "file", limit });
            }
            hasher.update(&buf[..n]);
        }
        let digest = Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))
            .map_err(|e| StoreError::Malformed(e.to_string()))?;
        Ok(BlobFile { path: path.to_owned(), digest, size })
    }
}

/// How concurrent writers of one tag are kept from losing each other's updates: what a
/// store can promise about a read-modify-write of the document at a tag.
pub enum TagWrites {
    /// Every sigil writer of the store's tags, in any process, waits for this lock: a read,
    /// merge and write made while it is held is exact. Released when dropped.
    Locked(TagLock),
    /// No lock and no conditional write (registries): the last write wins, so a writer must
    /// read back to find out whether a concurrent write replaced its own.
    LastWriterWins,
}

/// A held lock on a store's tags: a file locked across processes, released when this is
/// dropped (and by the operating system if the process dies).
pub struct TagLock {
    _file: std::fs::File,
}

impl TagLock {
    /// Wraps a file on which this process holds an exclusive lock.
    pub(crate) fn held(file: std::fs::File) -> Self {
        TagLock { _file: file }
    }
}

/// A registry repository, as the origin of a cross-repository blob mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOrigin {
    /// The registry host (as in references).
    pub registry: String,
    /// The repository.
    pub repository: String,
}

/// Called with the number of bytes uploaded so far.
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// A blob's bytes as they arrive, in chunks: never whole in memory. Streams from
/// [`Store::open_blob`] are checked ([`checked`]): one that would deliver other bytes than the
/// blob's ends with an error instead of its last chunk, so an upload fed from it fails.
pub type BlobStream = futures_util::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>;

/// `inner` as the blob `digest` of `size` bytes: more bytes than `size` end it with
/// [`StoreError::TooLarge`] as soon as they arrive; fewer bytes, or bytes that do not hash to
/// `digest`, end it with [`StoreError::DigestMismatch`] in place of its end.
pub fn checked(inner: BlobStream, digest: Digest, size: u64) -> BlobStream {
    use futures_util::StreamExt;
    use sha2::Digest as _;
    struct State {
        inner: BlobStream,
        digest: Digest,
        size: u64,
        seen: u64,
        hasher: sha2::Sha256,
        done: bool,
    }
    let state = State { inner, digest, size, seen: 0, hasher: sha2::Sha256::new(), done: false };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                if st.seen > st.size {
                    st.done = true;
                    return Some((Err(StoreError::TooLarge { what: "blob", limit: st.size }), st));
                }
                st.hasher.update(&chunk);
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => {
                st.done = true;
                let hex = hex::encode(std::mem::take(&mut st.hasher).finalize());
                if st.seen != st.size || hex != st.digest.hex() {
                    return Some((Err(StoreError::DigestMismatch(st.digest.clone())), st));
                }
                None
            }
        }
    })
    .boxed()
}

/// `inner`, ended with [`StoreError::Timeout`] if it has not finished by `by` (`secs` names
/// the allowance in the error).
pub fn by_deadline(inner: BlobStream, by: tokio::time::Instant, secs: u64) -> BlobStream {
    use futures_util::StreamExt;
    futures_util::stream::unfold((inner, false), move |(mut inner, done)| async move {
        if done {
            return None;
        }
        match tokio::time::timeout_at(by, inner.next()).await {
            Ok(Some(item)) => {
                let failed = item.is_err();
                Some((item, (inner, failed)))
            }
            Ok(None) => None,
            Err(_) => Some((Err(StoreError::Timeout(secs)), (inner, true))),
        }
    })
    .boxed()
}

/// The time allowed for moving a blob of `size` bytes: the per-request deadline plus a second
/// per MiB (uploads and streamed downloads alike).
pub fn blob_allowance(timeout: std::time::Duration, size: u64) -> std::time::Duration {
    timeout + std::time::Duration::from_secs(size >> 20)
}

/// One repository's worth of manifests and blobs.
pub trait Store: Send + Sync {
    /// Human-readable location (for messages).
    fn location(&self) -> String;

    /// Fetches a manifest; `Ok(None)` when the tag or digest is not there.
    fn get_manifest(&self, r: &ManifestRef) -> impl Future<Output = Result<Option<RawManifest>, StoreError>> + Send;

    /// Fetches a blob of at most `limit` bytes and checks its digest.
    fn get_blob(&self, digest: &Digest, limit: u64) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Stores a blob (no-op if present).
    fn put_blob(&self, bytes: Vec<u8>) -> impl Future<Output = Result<Digest, StoreError>> + Send;

    /// Stores a manifest under a tag (replacing what the tag pointed to) or by its digest.
    fn put_manifest(
        &self,
        r: &ManifestRef,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<Digest, StoreError>> + Send;

    /// Stores a blob streamed from a file, never holding it whole in memory; the content
    /// must hash to `file.digest`.
    fn put_blob_file(&self, file: &BlobFile, progress: Progress)
        -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Where this store's blobs could be mounted from, for another repository of the same
    /// registry ([`Store::mount_blob`]); `None` for layouts.
    fn blob_origin(&self) -> Option<BlobOrigin> {
        None
    }

    /// Makes the blob `digest` of another repository of the same registry part of this one
    /// without sending it (the distribution spec's cross-repository mount). `Ok(false)` when
    /// it was not mounted (another registry, a layout, or the registry declined): send it.
    fn mount_blob(&self, digest: &Digest, from: &BlobOrigin) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (digest, from);
        async { Ok(false) }
    }

    /// Whether the store holds the blob `digest` (so that a copy need not send it).
    fn has_blob(&self, digest: &Digest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The blob `digest` of `size` bytes as a [`checked`] stream, within
    /// [`blob_allowance`]; [`StoreError::BlobNotFound`] when it is not there.
    fn open_blob(&self, digest: &Digest, size: u64) -> impl Future<Output = Result<BlobStream, StoreError>> + Send;

    /// Stores the blob `digest` of `size` bytes from a stream, never holding it whole in
    /// memory; the store checks the bytes hash to `digest` before it keeps them.
    fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        body: BlobStream,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The referrers of `digest` through the OCI referrers API, every page (bounded):
    /// `Ok(None)` when the store has no such API (then the tag schema `sha256-<hex>` is used).
    fn get_referrers(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<Vec<manifest::Descriptor>>, StoreError>> + Send;

    /// Before a read-modify-write of the document at `tag`: the store's lock on its tags if
    /// it has one (waited for, within a bound), else [`TagWrites::LastWriterWins`].
    fn lock_tag(&self, tag: &str) -> impl Future<Output = Result<TagWrites, StoreError>> + Send;
}

/// Either kind of store, chosen at run time from an image reference.
// A command makes one store per repository it touches: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// A local OCI layout.
    Layout(layout::LayoutStore),
    /// A registry repository.
    Registry(registry::RegistryStore),
}

impl Store for Backend {
    fn location(&self) -> String {
        match self {
            Backend::Layout(s) => s.location(),
            Backend::Registry(s) => s.location(),
        }
    }

    async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<RawManifest>, StoreError> {
        match self {
            Backend::Layout(s) => s.get_manifest(r).await,
            Backend::Registry(s) => s.get_manifest(r).await,
        }
    }

    async fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        match self {
            Backend::Layout(s) => s.get_blob(digest, limit).await,
            Backend::Registry(s) => s.get_blob(digest, limit).await,
        }
    }

    async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        match self {
            Backend::Layout(s) => s.put_blob(bytes).await,
            Backend::Registry(s) => s.put_blob(bytes).await,
        }
    }

    async fn put_manifest(&self, r: &ManifestRef, media_type: &str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        match self {
            Backend::Layout(s) => s.put_manifest(r, media_type, bytes).await,
            Backend::Registry(s) => s.put_manifest(r, media_type, bytes).await,
        }
    }

    async fn put_blob_file(&self, file: &BlobFile, progress: Progress) -> Result<(), StoreError> {
        match self {
            Backend::Layout(s) => s.put_blob_file(file, progress).await,
            Backend::Registry(s) => s.put_blob_file(file, progress).await,
        }
    }

    fn blob_origin(&self) -> Option<BlobOrigin> {
        match self {
            Backend::Layout(s) => s.blob_origin(),
            Backend::Registry(s) => s.blob_origin(),
        }
    }

    async fn mount_blob(&self, digest: &Digest, from: &BlobOrigin) -> Result<bool, StoreError> {
        match self {
            Backend::Layout(s) => s.mount_blob(digest, from).await,
            Backend::Registry(s) => s.mount_blob(digest, from).await,
        }
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        match self {
            Backend::Layout(s) => s.has_blob(digest).await,
            Backend::Registry(s) => s.has_blob(digest).await,
        }
    }

    async fn open_blob(&self, digest: &Digest, size: u64) -> Result<BlobStream, StoreError> {
        match self {
            Backend::Layout(s) => s.open_blob(digest, size).await,
            Backend::Registry(s) => s.open_blob(digest, size).await,
        }
    }

    async fn put_blob_stream(&self, digest: &Digest, size: u64, body: BlobStream) -> Result<(), StoreError> {
        match self {
            Backend::Layout(s) => s.put_blob_stream(digest, size, body).await,
            Backend::Registry(s) => s.put_blob_stream(digest, size, body).await,
        }
    }

    async fn get_referrers(&self, digest: &Digest) -> Result<Option<Vec<manifest::Descriptor>>, StoreError> {
        match self {
            Backend::Layout(s) => s.get_referrers(digest).await,
            Backend::Registry(s) => s.get_referrers(digest).await,
        }
    }

    async fn lock_tag(&self, tag: &str) -> Result<TagWrites, StoreError> {
        match self {
            Backend::Layout(s) => s.lock_tag(tag).await,
            Backend::Registry(s) => s.lock_tag(tag).await,
        }
    }
}
