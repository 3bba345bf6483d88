//! Making sure one entry is listed in the document at a tag while other writers may be
//! updating the same tag: the one place where sigil reads, merges and writes shared lists.
//!
//! Two documents gain one entry per writer: cosign's attachment manifests (`sha256-<hex>.sig`
//! and `.att`, one layer per signature or attestation) and the OCI referrers tag-schema index
//! (`sha256-<hex>`, one manifest per referrer). A writer reads the document, adds its entry
//! and writes the whole document back, so two writers that read the same version would each
//! write a document without the other's entry. Entries are only ever added here, never
//! dropped.
//!
//! What [`Store::lock_tag`] offers decides how:
//! - [`TagWrites::Locked`] (an OCI layout): read, merge and write under the lock, then read
//!   back once. Exact against every sigil writer, in any process.
//! - [`TagWrites::LastWriterWins`] (a registry: no locks, no conditional writes): sigil writers
//!   follow a protocol that bounds when an overwrite can land, and look twice that none did:
//!   1. a write is never based on a read started more than [`FRESH_READ`] earlier (the
//!      document is read again instead, and again right before writing when a new config
//!      blob had to be pushed first), so a write that drops an entry written at time t is
//!      sent before t + FRESH_READ;
//!   2. after writing, the writer waits longer than FRESH_READ plus twice its own
//!      read-to-write time (other writers' requests take about as long), with jitter, and
//!      reads: if its entry is gone it backs off randomly, reads, merges and writes again; if
//!      it is there it waits and reads once more, and only two sightings in a row confirm it.
//!
//!   The residual risks (a request far slower than the writer's own, a registry serving stale
//!   reads for longer than the waits, writers that do not follow the protocol) are in
//!   SECURITY.md.
//!
//! Every loop is bounded (writes, reads, transient failures). A writer that gives up says the
//! entry may not be listed ([`ReconcileError::Unconfirmed`]); it never reports success.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use tokio::time::Instant;

use crate::attachments::signature_manifest;
use crate::digest::Digest;
use crate::oci::manifest::{
    referrers_index_with, Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError, MAX_LAYERS, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::oci::{ManifestRef, RawManifest, Store, StoreError, TagWrites};

/// A registry write is never based on a read started longer ago than this (W): the document
/// is read again instead. Shared by every sigil writer, so each can bound the others.
pub const FRESH_READ: Duration = Duration::from_millis(250);
/// A writer whose round trips cannot meet [`FRESH_READ`] (three stale reads in a row) doubles
/// its own bound, and its waits with it, up to this.
pub const MAX_FRESH_READ: Duration = Duration::from_secs(4);
/// Writes of the document before giving up.
pub const MAX_WRITES: u32 = 20;
/// Reads of the document (merges, confirmations, stale re-reads) before giving up.
pub const MAX_READS: u32 = 100;
/// Transient store failures (HTTP 500, "blob unknown" while others push the same blob)
/// tolerated in one call.
pub const MAX_TRANSIENT: u32 = 10;
/// Stale reads in a row before a writer widens its bound.
const STALE_BEFORE_WIDENING: u32 = 3;

/// Which document sits at the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// cosign's attachment manifest (`.sig`, `.att`): an image manifest with one layer per
    /// entry and a config listing the layers. An entry is there when an identical layer is.
    AttachmentManifest,
    /// The OCI referrers tag-schema index: an image index with one manifest per entry. An
    /// entry is there when its digest is listed.
    ReferrersIndex,
}

impl Collection {
    fn name(self) -> &'static str {
        match self {
            Collection::AttachmentManifest => "attachment manifest",
            Collection::ReferrersIndex => "referrers index",
        }
    }
}

/// The entry is listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The document last read with the entry in it.
    pub document: Digest,
    /// Writes made (0 when the entry was already listed).
    pub writes: u32,
}

/// Why the entry could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// A store failure that retrying does not cure (access refused, too large, timeout…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The document at the tag cannot be read; it is left alone.
    #[error("{what} is malformed ({source}); nothing was written")]
    Malformed {
        /// Which document.
        what: String,
        /// Why.
        source: ManifestError,
    },
    /// The document already holds as many entries as sigil and cosign read.
    #[error("{what} already holds {entries} entries, the most sigil and cosign read (1000); adding one would make every one unreadable, so nothing was added to it")]
    Full {
        /// Which document.
        what: String,
        /// Its entry count.
        entries: usize,
    },
    /// The bounded retries ran out before the entry was seen listed: it may or may not be.
    #[error("could not confirm that {what} lists it ({why})")]
    Unconfirmed {
        /// Which document.
        what: String,
        /// What ran out.
        why: GaveUp,
    },
}

/// Which bound ran out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GaveUp {
    /// Concurrent writers kept replacing the document.
    #[error("concurrent writers replaced it after each of {0} writes")]
    Overwritten(u32),
    /// Reads ran out (slow round trips kept every read stale, or confirmations kept failing).
    #[error("{0} reads without confirming it")]
    Reads(u32),
    /// The store kept failing.
    #[error("the store kept failing; last: {0}")]
    Failing(StoreError),
}

/// Whether a store failure is worth another try: the file-system registry answers 500 while
/// another writer replaces a tag, and "blob unknown" while others push the same blob.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Transport(_))
}

/// Runs `op` again after a transient failure, at most [`MAX_TRANSIENT`] times, with growing,
/// jittered pauses. For pushes that must precede [`ensure_listed`] (the entry's own content).
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut failures = 0;
    loop {
        match op().await {
            Err(e) if is_transient(&e) && failures < MAX_TRANSIENT => {
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
            done => return done,
        }
    }
}

/// How long a writer that wrote a whole document at a tag without a lock (a registry)
/// waits before reading it back, as [`ensure_listed`] does before each confirmation: by then
/// any write based on a read older than its own has landed. `window` is the writer's own
/// read-to-write time. (No jitter: one read-back follows, and a writer that finds its entry
/// gone goes on through [`ensure_listed`], which spreads writers apart.)
pub fn settle_time(window: Duration) -> Duration {
    FRESH_READ + window * 2
}

/// The content an entry describes.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// Already in the store (the caller pushed it).
    Stored,
    /// A blob to push before the first write, once the document is known to take the entry
    /// (nothing is written when it refuses, or already lists the entry).
    Blob(&'a [u8]),
}

/// Makes sure `entry` is listed in the `kind` document at `tag`, adding it to what is there
/// (nothing is dropped), and returns once that is confirmed (see the module docs for how,
/// per store).
pub async fn ensure_listed<S: Store>(
    store: &S,
    tag: &str,
    kind: Collection,
    entry: &Descriptor,
    mut content: Content<'_>,
) -> Result<Listed, ReconcileError> {
    let what = || format!("{} {}:{tag}", kind.name(), store.location());
    let mut budget = Budget { what: &what, reads: 0, failures: 0, writes: 0 };
    // Held until this function returns (a layout's lock), or nothing to hold (a registry).
    let held = store.lock_tag(tag).await?;
    let mut pacing = match &held {
        TagWrites::Locked(_) => Pacing::Locked,
        TagWrites::LastWriterWins => Pacing::Unlocked { fresh: FRESH_READ, stale_in_row: 0 },
    };
    let at = ManifestRef::Tag(tag.to_owned());
    let (mut sightings, mut backed_off) = (0u32, 0u32);
    // From the start of the read a write was based on to the end of that write.
    let mut window = Duration::ZERO;
    let mut configs_pushed: HashSet<Digest> = HashSet::new();
    // A read made at the end of the previous pass, to start this one from.
    let mut carried = None;
    loop {
        let (mut read_started, raw) = match carried.take() {
            Some(read) => read,
            None => match budget.read(store, &at).await? {
                Some(read) => read,
                None => continue,
            },
        };
        let listing = Listing::parse(kind, raw, &what)?;
        if let Some(document) = listing.holding(entry) {
            if budget.writes == 0 {
                // Listed before this writer wrote anything (the same entry added twice).
                return Ok(Listed { document, writes: 0 });
            }
            sightings += 1;
            if sightings == pacing.sightings_needed() {
                return Ok(Listed { document, writes: budget.writes });
            }
            pacing.wait_before_reading(window, budget.writes).await;
            continue;
        }
        // Not (or no longer) listed: merge into what is there now and write.
        sightings = 0;
        if budget.writes > backed_off {
            // Lost to a concurrent writer, who may be about to retry too: back off once per
            // loss (randomly, longer after each) and read again before writing.
            backed_off = budget.writes;
            pacing.back_off(window, budget.writes).await;
            continue;
        }
        if budget.writes == MAX_WRITES {
            return Err(budget.gave_up(GaveUp::Overwritten(budget.writes)));
        }
        let listed = listing.entries();
        if listed >= MAX_LAYERS {
            return Err(ReconcileError::Full { what: what(), entries: listed });
        }
        if let Content::Blob(blob) = content {
            match store.put_blob(blob.to_vec()).await {
                Ok(_) => content = Content::Stored,
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(budget.failed(e)?).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let merged_from = listing.digest();
        let doc = listing.with(kind, entry.clone())?;
        if let Some(config) = doc.config {
            let digest = Digest::sha256(&config);
            if !configs_pushed.contains(&digest) {
                match store.put_blob(config).await {
                    Ok(_) => {
                        configs_pushed.insert(digest);
                    }
                    Err(e) if is_transient(&e) => {
                        tokio::time::sleep(budget.failed(e)?).await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
                if let Pacing::Unlocked { .. } = pacing {
                    // The push took a while: check the document is still the one merged
                    // into, so that the write is based on a read just made.
                    let Some((again_started, again)) = budget.read(store, &at).await? else { continue };
                    if again.as_ref().map(|r| &r.digest) != merged_from.as_ref() {
                        carried = Some((again_started, again));
                        continue;
                    }
                    read_started = again_started;
                }
            }
        }
        if pacing.is_stale(read_started.elapsed()) {
            continue;
        }
        budget.writes += 1;
        let put = store.put_manifest(&at, doc.media_type, doc.bytes).await;
        window = read_started.elapsed();
        match put {
            Ok(_) => {}
            // The write may have landed or not: read back as after any write; push the
            // config again first if it is the blob the registry did not know.
            Err(e) if is_transient(&e) => {
                configs_pushed.clear();
                tokio::time::sleep(budget.failed(e)?).await;
            }
            Err(e) => return Err(e.into()),
        }
        pacing.wait_before_reading(window, budget.writes).await;
    }
}

/// The bounded reads, writes and tolerated failures of one [`ensure_listed`] call.
struct Budget<'a> {
    what: &'a dyn Fn() -> String,
    reads: u32,
    failures: u32,
    /// Writes of the document attempted so far.
    writes: u32,
}

impl Budget<'_> {
    fn gave_up(&self, why: GaveUp) -> ReconcileError {
        ReconcileError::Unconfirmed { what: (self.what)(), why }
    }

    /// Counts a transient failure: the pause before trying again, or giving up (with the
    /// store's error while nothing was written, else "could not confirm").
    fn failed(&mut self, e: StoreError) -> Result<Duration, ReconcileError> {
        self.failures += 1;
        match (self.failures > MAX_TRANSIENT, self.writes) {
            (false, _) => Ok(backoff(self.failures)),
            (true, 0) => Err(ReconcileError::Store(e)),
            (true, _) => Err(self.gave_up(GaveUp::Failing(e))),
        }
    }

    /// Reads the document at `at`: when the read started and what it returned, or `None`
    /// after a transient failure (already paused for).
    async fn read<S: Store>(
        &mut self,
        store: &S,
        at: &ManifestRef,
    ) -> Result<Option<(Instant, Option<RawManifest>)>, ReconcileError> {
        if self.reads == MAX_READS {
            return Err(self.gave_up(GaveUp::Reads(self.reads)));
        }
        self.reads += 1;
        let started = Instant::now();
        match store.get_manifest(at).await {
            Ok(raw) => Ok(Some((started, raw))),
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(self.failed(e)?).await;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How the loop paces itself, from what the store offers.
enum Pacing {
    /// Under the store's lock: no waits, one read-back.
    Locked,
    /// The registry protocol, with this writer's current bound on read age.
    Unlocked {
        /// W for this writer: [`FRESH_READ`], widened when its round trips cannot meet it.
        fresh: Duration,
        /// Stale reads in a row.
        stale_in_row: u32,
    },
}

impl Pacing {
    /// Sightings in a row that confirm the entry.
    fn sightings_needed(&self) -> u32 {
        match self {
            Pacing::Locked => 1,
            Pacing::Unlocked { .. } => 2,
        }
    }

    /// Whether a read this old must not be written from (it is read again instead).
    fn is_stale(&mut self, age: Duration) -> bool {
        let Pacing::Unlocked { fresh, stale_in_row } = self else { return false };
        if age <= *fresh {
            *stale_in_row = 0;
            return false;
        }
        *stale_in_row += 1;
        if *stale_in_row == STALE_BEFORE_WIDENING {
            *stale_in_row = 0;
            *fresh = (*fresh * 2).min(MAX_FRESH_READ);
        }
        true
    }

    /// After losing an entry: a random pause, up to twice the last read-to-write time per
    /// loss so far (doubling, capped at 32), so that writers that lost together retry apart.
    async fn back_off(&self, window: Duration, writes: u32) {
        if let Pacing::Unlocked { .. } = self {
            let unit = window.max(Duration::from_millis(10));
            tokio::time::sleep(jitter(unit * (1u32 << writes.min(5)))).await;
        }
    }

    /// Before reading back: long enough for any write based on a read older than ours to
    /// have landed, spread apart so that concurrent writers do not stay in step.
    async fn wait_before_reading(&self, window: Duration, writes: u32) {
        let Pacing::Unlocked { fresh, .. } = self else { return };
        let spread = jitter(*fresh / 2 * writes.clamp(1, 4));
        tokio::time::sleep(*fresh + window * 2 + spread).await;
    }
}

/// The document at the tag, parsed.
enum Listing {
    /// No document yet.
    Absent,
    /// An attachment manifest.
    Manifest(Digest, ImageManifest),
    /// A referrers index.
    Index(Digest, ImageIndex),
}

/// A document to write.
struct Document {
    bytes: Vec<u8>,
    media_type: &'static str,
    /// A config blob to push before the document.
    config: Option<Vec<u8>>,
}

impl Listing {
    fn parse(kind: Collection, raw: Option<RawManifest>, what: &dyn Fn() -> String) -> Result<Self, ReconcileError> {
        let Some(raw) = raw else { return Ok(Listing::Absent) };
        let unexpected = |found: &str| ReconcileError::Malformed {
            what: what(),
            source: ManifestError::Unsupported { schema: 2, media_type: Some(found.to_owned()) },
        };
        match (kind, Manifest::parse(&raw.bytes)) {
            (_, Err(source)) => Err(ReconcileError::Malformed { what: what(), source }),
            (Collection::AttachmentManifest, Ok(Manifest::Image(m))) => Ok(Listing::Manifest(raw.digest, m)),
            (Collection::ReferrersIndex, Ok(Manifest::Index(i))) => Ok(Listing::Index(raw.digest, i)),
            (Collection::AttachmentManifest, Ok(Manifest::Index(_))) => Err(unexpected("index")),
            (Collection::ReferrersIndex, Ok(Manifest::Image(_))) => {
                Err(unexpected("an image manifest where an index was expected"))
            }
        }
    }

    /// The document's digest when it lists `entry`.
    fn holding(&self, entry: &Descriptor) -> Option<Digest> {
        match self {
            Listing::Absent => None,
            Listing::Manifest(d, m) => m.layers.contains(entry).then(|| d.clone()),
            Listing::Index(d, i) => i.manifests.iter().any(|m| m.digest == entry.digest).then(|| d.clone()),
        }
    }

    fn digest(&self) -> Option<Digest> {
        match self {
            Listing::Absent => None,
            Listing::Manifest(d, _) | Listing::Index(d, _) => Some(d.clone()),
        }
    }

    fn entries(&self) -> usize {
        match self {
            Listing::Absent => 0,
            Listing::Manifest(_, m) => m.layers.len(),
            Listing::Index(_, i) => i.manifests.len(),
        }
    }

    /// The document with `entry` appended, every entry already there kept.
    fn with(self, kind: Collection, entry: Descriptor) -> Result<Document, ReconcileError> {
        let layers = |mut layers: Vec<Descriptor>| {
            layers.push(entry.clone());
            let (bytes, config) = signature_manifest(layers);
            Document { bytes, media_type: OCI_MANIFEST, config: Some(config) }
        };
        let index = |existing: Option<ImageIndex>| -> Result<Document, ReconcileError> {
            let bytes = serde_json::to_vec(&referrers_index_with(existing, entry.clone()))
                .map_err(|e| StoreError::Malformed(e.to_string()))?;
            Ok(Document { bytes, media_type: OCI_INDEX, config: None })
        };
        match (self, kind) {
            (Listing::Manifest(_, m), _) => Ok(layers(m.layers)),
            (Listing::Absent, Collection::AttachmentManifest) => Ok(layers(Vec::new())),
            (Listing::Index(_, i), _) => index(Some(i)),
            (Listing::Absent, Collection::ReferrersIndex) => index(None),
        }
    }
}

/// A random duration up to `max`.
fn jitter(max: Duration) -> Duration {
    let micros = max.as_micros() as u64;
    if micros == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(OsRng.next_u64() % (micros + 1))
}

/// The pause after the n-th transient failure.
fn backoff(n: u32) -> Duration {
    let base = Duration::from_millis(25) * n;
    base + jitter(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::SIMPLE_SIGNING;
    use crate::oci::layout::LayoutStore;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn stale_reads_widen_the_bound_up_to_its_limit() {
        let mut p = Pacing::Unlocked { fresh: FRESH_READ, stale_in_row: 0 };
        assert!(!p.is_stale(FRESH_READ));
        for _ in 0..40 {
            assert!(p.is_stale(Duration::from_secs(60)));
        }
        assert!(matches!(p, Pacing::Unlocked { fresh, .. } if fresh == MAX_FRESH_READ));
        assert!(!Pacing::Locked.is_stale(Duration::from_secs(60)));
    }

    #[test]
    fn entries_are_added_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::create(dir.path()).unwrap();
        let tag = "sha256-0000000000000000000000000000000000000000000000000000000000000000.sig";
        let a = Descriptor::of(SIMPLE_SIGNING, b"a");
        let b = Descriptor::of(SIMPLE_SIGNING, b"b");
        let rt = rt();
        let first =
            rt.block_on(ensure_listed(&store, tag, Collection::AttachmentManifest, &a, Content::Stored)).unwrap();
        assert_eq!(first.writes, 1);
        let second =
            rt.block_on(ensure_listed(&store, tag, Collection::AttachmentManifest, &b, Content::Stored)).unwrap();
        assert_eq!(second.writes, 1);
        let again =
            rt.block_on(ensure_listed(&store, tag, Collection::AttachmentManifest, &a, Content::Stored)).unwrap();
        assert_eq!((again.writes, &again.document), (0, &second.document));
        let raw = rt.block_on(store.get_manifest(&ManifestRef::Tag(tag.into()))).unwrap().unwrap();
        let Manifest::Image(m) = Manifest::parse(&raw.bytes).unwrap() else { panic!("not a manifest") };
        assert_eq!(m.layers, vec![a, b]);
        // The wrong kind of document at the tag is left alone.
        let err = rt
            .block_on(ensure_listed(&store, tag, Collection::ReferrersIndex, &first_entry(), Content::Stored))
            .unwrap_err();
        assert!(matches!(err, ReconcileError::Malformed { .. }), "{err}");
    }

    fn first_entry() -> Descriptor {
        Descriptor::of(OCI_MANIFEST, b"artifact")
    }

    #[test]
    fn transient_failures_are_retried_a_bounded_number_of_times() {
        let rt = rt();
        let mut calls = 0;
        let r: Result<(), StoreError> = rt.block_on(retrying(|| {
            calls += 1;
            async { Err(StoreError::Transport("HTTP 500".into())) }
        }));
        assert!(r.is_err());
        assert_eq!(calls, MAX_TRANSIENT + 1);
        let mut calls = 0;
        let r: Result<(), StoreError> = rt.block_on(retrying(|| {
            calls += 1;
            async { Err(StoreError::Auth("denied".into())) }
        }));
        assert!(matches!(r, Err(StoreError::Auth(_))));
        assert_eq!(calls, 1, "not transient: not retried");
    }
}
