//! Copying an image with everything attached to it from one store to another: registries and
//! OCI layouts in any direction (a layout is the air-gap format), as cosign's `copy`, `save`
//! and `load` do, and OCI 1.1 referrers besides.
//!
//! What travels: the image (one manifest, or an index and the children chosen), cosign's
//! legacy attachment manifests of every digest copied (`sha256-<hex>.sig`, `.att`, `.sbom`)
//! and the OCI referrers of those digests (listed by the referrers API or the tag schema,
//! and the referrers of referrers, a few levels deep), each with its blobs. Manifests travel
//! byte for byte, so every digest at the destination is the digest at the source and every
//! signature verifies there as it did here.
//!
//! How:
//! - blobs stream from source to destination ([`Store::open_blob`], checked against their
//!   digest on the way), a few at a time, and only those the destination lacks (within one
//!   registry they are mounted from the source repository instead, [`Store::mount_blob`]);
//! - manifests are written children first; the destination tag last, so that whoever pulls
//!   it finds the signatures already there;
//! - an attachment document the destination already has is merged, never replaced: each
//!   entry it lacks is added through [`crate::reconcile`], so a copy loses nobody's signature.
//!   One the destination lacks is written as the source's bytes; on a registry (no locks) it
//!   is read back after the writers' settling time and re-merged if a concurrent writer
//!   replaced it;
//! - referrers are made discoverable at the destination: by its referrers API (read back
//!   until listed), else by the tag schema.
//!
//! A copy checks nothing about who signed: it moves bytes. Generic over [`Store`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use crate::attachments::referrers::{self, list_referrers};
use crate::attachments::{legacy_tag, ATTESTATION_SUFFIX, SBOM_SUFFIX, SIGNATURE_SUFFIX};
use crate::digest::Digest;
use crate::oci::manifest::{referrers_tag, Descriptor, ImageIndex, Manifest, ManifestError, OCI_INDEX};
use crate::oci::{ManifestRef, RawManifest, Store, StoreError, TagWrites};
use crate::reconcile::{self, Collection, Content, ReconcileError};

/// Blobs moved at once.
pub const BLOB_CONCURRENCY: usize = 4;
/// Manifests and attachment lists read at once.
const READ_CONCURRENCY: usize = 8;
/// How deep indexes nest (an index of indexes of images is depth 2).
const MAX_INDEX_DEPTH: usize = 4;
/// How deep referrers of referrers are followed (a signature on an SBOM is depth 2).
const MAX_REFERRER_DEPTH: usize = 3;
/// Most manifests one copy moves (image, children, attachments, referrers).
pub const MAX_MANIFESTS: usize = 10_000;

/// What a copy moves. The image itself, and each kind of attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The image: its manifest (or index and children) and blobs, and the destination tag.
    Image,
    /// cosign's signature manifests (`sha256-<hex>.sig`).
    Sig,
    /// cosign's attestation manifests (`sha256-<hex>.att`).
    Att,
    /// cosign's SBOM manifests (`sha256-<hex>.sbom`).
    Sbom,
    /// OCI 1.1 referrers (Sigstore bundles, SBOM artifacts, …) and theirs.
    Referrers,
}

impl Part {
    /// Every part, the default.
    pub const ALL: [Part; 5] = [Part::Image, Part::Sig, Part::Att, Part::Sbom, Part::Referrers];

    fn legacy_suffix(self) -> Option<&'static str> {
        match self {
            Part::Sig => Some(SIGNATURE_SUFFIX),
            Part::Att => Some(ATTESTATION_SUFFIX),
            Part::Sbom => Some(SBOM_SUFFIX),
            Part::Image | Part::Referrers => None,
        }
    }
}

/// A platform to select from an index: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … (any variant matches when absent).
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => {
                Ok(Platform { os: (*os).to_owned(), architecture: (*arch).to_owned(), variant: None })
            }
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => {
                Ok(Platform { os: (*os).to_owned(), architecture: (*arch).to_owned(), variant: Some((*v).to_owned()) })
            }
            _ => Err(format!("platform {s:?} is not os/architecture[/variant] (e.g. linux/amd64, linux/arm/v7)")),
        }
    }

    /// Whether a platform object (an index entry's, or an image config's `os`,
    /// `architecture`, `variant`) is this one.
    pub fn matches(&self, p: &serde_json::Value) -> bool {
        let field = |k: &str| p.get(k).and_then(serde_json::Value::as_str);
        field("os") == Some(self.os.as_str())
            && field("architecture") == Some(self.architecture.as_str())
            && self.variant.as_deref().is_none_or(|v| field("variant") == Some(v))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Where the image goes in the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Under this tag.
    Tag(String),
    /// By digest only; the image copied must have this digest.
    Digest(Digest),
    /// Under this tag; the image copied must have this digest (`REPO:TAG@DIGEST`).
    TagAt(String, Digest),
}

/// What to do when the destination tag already names another image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop before writing anything (cosign's default).
    Refuse,
    /// Point the tag at the copied image (`--force`).
    Replace,
}

/// One copy.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// The image at the source.
    pub source: ManifestRef,
    /// Where it goes.
    pub target: Target,
    /// What travels.
    pub parts: BTreeSet<Part>,
    /// Only this child of an index (which becomes the image copied), as cosign's
    /// `--platform`.
    pub platform: Option<Platform>,
    /// An occupied destination tag.
    pub existing: Existing,
    /// Where the source keeps cosign's attachment documents.
    pub arrangement: Arrangement,
}

/// Where the source keeps cosign's `.sig`/`.att`/`.sbom` documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrangement {
    /// Under cosign's tags (registries, sigil's and skopeo's layouts).
    Tags,
    /// A layout `cosign save` wrote: the image's documents are the marked entries
    /// ([`crate::attachments::saved`]).
    CosignSave(crate::attachments::saved::Saved),
}

/// What happened to one attachment document or referrer at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Written as at the source.
    Written,
    /// The destination had its own: the source's entries were added to it.
    Merged,
    /// The destination had it already.
    Present,
}

/// One attachment copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopiedAttachment {
    /// The digest it is attached to.
    pub subject: Digest,
    /// Which part it is.
    pub kind: Part,
    /// Its tag (legacy) or manifest digest (referrer).
    pub reference: String,
    /// Layers (legacy) or 1 (a referrer).
    pub entries: usize,
    /// What happened.
    pub outcome: Outcome,
}

/// Blob traffic.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BlobCounts {
    /// Blobs sent.
    pub copied: usize,
    /// Blobs the destination had already, or mounted from another repository of the same
    /// registry (not sent).
    pub present: usize,
    /// Bytes sent.
    pub bytes: u64,
}

/// What a copy did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    /// The digest of the image copied (the child, with a platform).
    pub digest: Digest,
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The destination tag written, if any.
    pub tag: Option<String>,
    /// Manifests written (image, children, attachments, referrers).
    pub manifests: usize,
    /// Blobs.
    pub blobs: BlobCounts,
    /// Attachments, in the order written.
    pub attachments: Vec<CopiedAttachment>,
}

/// Why a copy stopped. Anything written before stays (blobs and untagged manifests are
/// harmless; the destination tag is written last).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The source image is not there.
    #[error("image {0} not found")]
    NotFound(String),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest at the source is malformed.
    #[error("{what} is malformed: {source}")]
    Malformed {
        /// Which.
        what: String,
        /// Why.
        source: ManifestError,
    },
    /// No child (or more than one) of the index has the platform asked for.
    #[error("{0}")]
    Platform(String),
    /// The destination tag names another image.
    #[error("{location}:{tag} already names {has}, not {copied}; nothing was written")]
    TagTaken {
        /// The destination.
        location: String,
        /// The tag.
        tag: String,
        /// What it names.
        has: Digest,
        /// What was to be copied.
        copied: Digest,
    },
    /// The destination was named by a digest the image does not have.
    #[error("the image copied is {copied}, not {named}; nothing was written")]
    DigestDiffers {
        /// The digest named.
        named: Digest,
        /// The image's.
        copied: Digest,
    },
    /// Adding an entry to a destination document failed or could not be confirmed.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// More than [`MAX_MANIFESTS`], or nesting deeper than sigil follows.
    #[error("{0}")]
    TooMuch(String),
}

/// A manifest to write at the destination, with the blobs it needs.
#[derive(Debug, Clone)]
struct Node {
    raw: RawManifest,
    media_type: String,
    blobs: Vec<Descriptor>,
}

impl Node {
    fn parse(raw: RawManifest, what: impl Fn() -> String) -> Result<(Self, Manifest), CopyError> {
        let parsed = Manifest::parse(&raw.bytes).map_err(|source| CopyError::Malformed { what: what(), source })?;
        let blobs = match &parsed {
            Manifest::Image(m) => std::iter::once(m.config.clone()).chain(m.layers.iter().cloned()).collect(),
            Manifest::Index(_) => Vec::new(),
        };
        Ok((Node { media_type: parsed.media_type().to_owned(), raw, blobs }, parsed))
    }
}

/// A legacy attachment manifest found at the source.
#[derive(Debug)]
struct LegacyDoc {
    subject: Digest,
    kind: Part,
    tag: String,
    node: Node,
    layers: Vec<Descriptor>,
}

/// A referrer found at the source: its manifest, and its entry in a referrers list.
#[derive(Debug)]
struct FoundReferrer {
    subject: Digest,
    entry: Descriptor,
    node: Node,
    depth: usize,
}

/// Copies the image `req.source` of `src` and what is attached to it to `dst`.
pub async fn copy<S: Store, D: Store>(src: &S, dst: &D, req: &CopyRequest) -> Result<CopyReport, CopyError> {
    let root = src
        .get_manifest(&req.source)
        .await?
        .ok_or_else(|| CopyError::NotFound(format!("{}{}", src.location(), req.source)))?;
    let root = match &req.platform {
        Some(p) => select_platform(src, root, p).await?,
        None => root,
    };
    let root_digest = root.digest.clone();
    if let Target::Digest(named) | Target::TagAt(_, named) = &req.target {
        if *named != root_digest {
            return Err(CopyError::DigestDiffers { named: named.clone(), copied: root_digest });
        }
    }
    match &req.target {
        Target::Tag(tag) | Target::TagAt(tag, _)
            if req.existing == Existing::Refuse && req.parts.contains(&Part::Image) =>
        {
            if let Some(there) = dst.get_manifest(&ManifestRef::Tag(tag.clone())).await? {
                if there.digest != root_digest {
                    return Err(CopyError::TagTaken {
                        location: dst.location(),
                        tag: tag.clone(),
                        has: there.digest,
                        copied: root_digest,
                    });
                }
            }
        }
        _ => {}
    }

    // Read everything first: the image's manifests, then what is attached to each of them.
    let tree = image_tree(src, root).await?;
    let subjects: Vec<Digest> = tree.iter().map(|n| n.raw.digest.clone()).collect();
    let legacy = legacy_docs(src, &subjects, &req.parts, &req.arrangement).await?;
    let referrers = if req.parts.contains(&Part::Referrers) { found_referrers(src, &subjects).await? } else { vec![] };
    let count = tree.len() + legacy.len() + referrers.len();
    if count > MAX_MANIFESTS {
        return Err(CopyError::TooMuch(format!(
            "the image and its attachments are {count} manifests, more than the {MAX_MANIFESTS} sigil copies at once"
        )));
    }

    // Blobs, each once, only those the destination lacks; the attachments' and the
    // image's travel side by side (a blob both need goes first).
    let copy_image = req.parts.contains(&Part::Image);
    let attachment_nodes = legacy.iter().map(|l| &l.node).chain(referrers.iter().map(|r| &r.node));
    let attachment_blobs = blob_set(attachment_nodes)?;
    let mut image_blobs = if copy_image { blob_set(tree.iter())? } else { BTreeMap::new() };
    let shared: BTreeMap<Digest, u64> =
        attachment_blobs.iter().filter(|(d, _)| image_blobs.contains_key(*d)).map(|(d, s)| (d.clone(), *s)).collect();
    image_blobs.retain(|d, _| !shared.contains_key(d));
    let attachment_blobs: BTreeMap<Digest, u64> =
        attachment_blobs.into_iter().filter(|(d, _)| !shared.contains_key(d)).collect();
    let mut counts = copy_blobs(src, dst, shared).await?;

    // The attachments (ending with the wait for concurrent writers, when there is one) and
    // the image's manifests by digest, children first; the root's tag comes last.
    let image = async {
        let moved = copy_blobs(src, dst, image_blobs).await?;
        if copy_image {
            for node in &tree {
                put_node(dst, node, &ManifestRef::Digest(node.raw.digest.clone())).await?;
            }
        }
        Ok::<_, CopyError>(moved)
    };
    let attachments = async {
        let moved = copy_blobs(src, dst, attachment_blobs).await?;
        let written = put_attachments(dst, &legacy, &referrers).await?;
        Ok::<_, CopyError>((moved, written))
    };
    let (image_moved, (attachments_moved, (attachments, written))) = futures_util::try_join!(image, attachments)?;
    for moved in [image_moved, attachments_moved] {
        counts.copied += moved.copied;
        counts.present += moved.present;
        counts.bytes += moved.bytes;
    }
    let mut report = CopyReport {
        digest: root_digest.clone(),
        media_type: tree.last().map(|n| n.media_type.clone()).unwrap_or_default(),
        tag: None,
        manifests: written + if copy_image { tree.len() } else { 0 },
        blobs: counts,
        attachments,
    };

    if copy_image {
        if let (Target::Tag(tag) | Target::TagAt(tag, _), Some(root)) = (&req.target, tree.last()) {
            put_node(dst, root, &ManifestRef::Tag(tag.clone())).await?;
            report.tag = Some(tag.clone());
        }
    }
    Ok(report)
}

/// The blobs `nodes` need, each once.
fn blob_set<'n>(nodes: impl Iterator<Item = &'n Node>) -> Result<BTreeMap<Digest, u64>, CopyError> {
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    for b in nodes.flat_map(|n| n.blobs.iter()) {
        if let Some(size) = blobs.insert(b.digest.clone(), b.size) {
            if size != b.size {
                return Err(StoreError::Malformed(format!(
                    "the source's manifests give blob {} two sizes, {size} and {}",
                    b.digest, b.size
                ))
                .into());
            }
        }
    }
    Ok(blobs)
}

/// Writes the attachments whose blobs are at the destination: referrer manifests (subjects
/// before their referrers) and their listing, cosign's attachment manifests; then waits out
/// concurrent writers where whole documents were written without a lock. Returns what was
/// done and how many manifests were written.
async fn put_attachments<D: Store>(
    dst: &D,
    legacy: &[LegacyDoc],
    referrers: &[FoundReferrer],
) -> Result<(Vec<CopiedAttachment>, usize), CopyError> {
    let mut report = Vec::new();
    let mut written = 0;
    for r in referrers {
        put_node(dst, &r.node, &ManifestRef::Digest(r.node.raw.digest.clone())).await?;
        written += 1;
    }
    let mut by_subject: BTreeMap<Digest, Vec<&FoundReferrer>> = BTreeMap::new();
    for r in referrers {
        by_subject.entry(r.subject.clone()).or_default().push(r);
    }
    // Each tag is written once, so the documents go at once.
    let listings = futures_util::future::try_join_all(by_subject.into_iter().map(|(subject, found)| async move {
        let entries: Vec<Descriptor> = found.iter().map(|r| r.entry.clone()).collect();
        let (outcome, unlocked) = list_at_destination(dst, &subject, &entries).await?;
        Ok::<_, CopyError>((subject, found, entries, outcome, unlocked))
    }));
    let docs = futures_util::future::try_join_all(legacy.iter().map(|doc| async move {
        let (outcome, unlocked) = put_legacy(dst, doc).await?;
        Ok::<_, CopyError>((doc, outcome, unlocked))
    }));
    let (listings, docs) = futures_util::try_join!(listings, docs)?;
    let mut to_settle = Settle::default();
    for (subject, found, entries, outcome, unlocked) in listings {
        if let Some(window) = unlocked {
            to_settle.add(referrers_tag(&subject), Collection::ReferrersIndex, entries, window);
        }
        for r in found {
            report.push(CopiedAttachment {
                subject: subject.clone(),
                kind: Part::Referrers,
                reference: r.entry.digest.to_string(),
                entries: 1,
                outcome,
            });
        }
    }
    for (doc, outcome, unlocked) in docs {
        if outcome == Outcome::Written {
            written += 1;
        }
        if let Some(window) = unlocked {
            to_settle.add(doc.tag.clone(), Collection::AttachmentManifest, doc.layers.clone(), window);
        }
        report.push(CopiedAttachment {
            subject: doc.subject.clone(),
            kind: doc.kind,
            reference: doc.tag.clone(),
            entries: doc.layers.len(),
            outcome,
        });
    }
    to_settle.run(dst).await?;
    Ok((report, written))
}

/// The child of the index `root` with platform `p` (fetched), or `root` itself when it is an
/// image whose config has that platform.
async fn select_platform<S: Store>(src: &S, root: RawManifest, p: &Platform) -> Result<RawManifest, CopyError> {
    let what = || format!("image manifest {}", root.digest);
    match Manifest::parse(&root.bytes).map_err(|source| CopyError::Malformed { what: what(), source })? {
        Manifest::Index(index) => {
            let matching: Vec<&Descriptor> =
                index.manifests.iter().filter(|m| m.platform.as_ref().is_some_and(|pl| p.matches(pl))).collect();
            let [child] = matching.as_slice() else {
                let offered: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(|pl| {
                        let f = |k: &str| pl.get(k).and_then(serde_json::Value::as_str).unwrap_or("?").to_owned();
                        let v = pl.get("variant").and_then(serde_json::Value::as_str);
                        format!("{}/{}{}", f("os"), f("architecture"), v.map(|v| format!("/{v}")).unwrap_or_default())
                    })
                    .collect();
                let how = if matching.is_empty() { "no entry" } else { "more than one entry" };
                return Err(CopyError::Platform(format!(
                    "index {} has {how} for {p} (it has: {})",
                    root.digest,
                    offered.join(", ")
                )));
            };
            src.get_manifest(&ManifestRef::Digest(child.digest.clone()))
                .await?
                .ok_or_else(|| CopyError::NotFound(format!("{}@{} ({p})", src.location(), child.digest)))
        }
        Manifest::Image(m) => {
            let config = src.get_blob(&m.config.digest, CONFIG_LIMIT).await?;
            let config: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
                CopyError::Platform(format!("the config of {} does not say its platform: {e}", root.digest))
            })?;
            if !p.matches(&config) {
                return Err(CopyError::Platform(format!("image {} is a single-platform image, not {p}", root.digest)));
            }
            Ok(root)
        }
    }
}

/// The most read of an image config to learn its platform.
const CONFIG_LIMIT: u64 = 4 << 20;

/// The manifests of the image at `root`: the root last, each index after its children.
async fn image_tree<S: Store>(src: &S, root: RawManifest) -> Result<Vec<Node>, CopyError> {
    let mut out = Vec::new();
    // Children are read a level at a time.
    let mut level = vec![root];
    let mut levels: Vec<Vec<Node>> = Vec::new();
    for depth in 0..=MAX_INDEX_DEPTH {
        if level.is_empty() {
            break;
        }
        if depth == MAX_INDEX_DEPTH {
            return Err(CopyError::TooMuch(format!("indexes nest deeper than {MAX_INDEX_DEPTH} levels")));
        }
        let mut next = Vec::new();
        let mut nodes = Vec::new();
        let mut wanted = Vec::new();
        for raw in level {
            let digest = raw.digest.clone();
            let (node, parsed) = Node::parse(raw, || format!("manifest {digest}"))?;
            if let Manifest::Index(i) = parsed {
                wanted.extend(i.manifests.into_iter().map(|m| m.digest));
            }
            nodes.push(node);
        }
        let seen: BTreeSet<Digest> = levels.iter().flatten().chain(&nodes).map(|n| n.raw.digest.clone()).collect();
        wanted.retain(|d| !seen.contains(d));
        wanted.sort();
        wanted.dedup();
        if seen.len() + wanted.len() > MAX_MANIFESTS {
            return Err(CopyError::TooMuch(format!("the image has more than {MAX_MANIFESTS} manifests")));
        }
        let fetched: Vec<RawManifest> = futures_util::stream::iter(wanted)
            .map(|d| async move {
                src.get_manifest(&ManifestRef::Digest(d.clone()))
                    .await?
                    .ok_or_else(|| CopyError::NotFound(format!("{}@{d} (listed by the index)", src.location())))
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        next.extend(fetched);
        levels.push(nodes);
        level = next;
    }
    for nodes in levels.into_iter().rev() {
        out.extend(nodes);
    }
    Ok(out)
}

/// cosign's attachment manifests of `subjects` at the source, for the parts asked.
async fn legacy_docs<S: Store>(
    src: &S,
    subjects: &[Digest],
    parts: &BTreeSet<Part>,
    arrangement: &Arrangement,
) -> Result<Vec<LegacyDoc>, CopyError> {
    let wanted: Vec<(Digest, Part)> = subjects
        .iter()
        .flat_map(|d| parts.iter().filter(|p| p.legacy_suffix().is_some()).map(move |p| (d.clone(), *p)))
        .collect();
    let found: Vec<Option<LegacyDoc>> = futures_util::stream::iter(wanted)
        .map(|(subject, kind)| async move {
            let tag = legacy_tag(&subject, kind.legacy_suffix().unwrap_or_default());
            let at = match (arrangement, kind) {
                (Arrangement::CosignSave(saved), Part::Sig) if saved.image == subject => {
                    saved.signatures.clone().map(ManifestRef::Digest)
                }
                (Arrangement::CosignSave(saved), Part::Att) if saved.image == subject => {
                    saved.attestations.clone().map(ManifestRef::Digest)
                }
                _ => Some(ManifestRef::Tag(tag.clone())),
            };
            let Some(at) = at else { return Ok(None) };
            let Some(raw) = src.get_manifest(&at).await? else { return Ok(None) };
            let what = || format!("attachment manifest {}:{tag}", src.location());
            let (node, parsed) = Node::parse(raw, what)?;
            let Manifest::Image(m) = parsed else {
                return Err(CopyError::Malformed {
                    what: what(),
                    source: ManifestError::Unsupported { schema: 2, media_type: Some(OCI_INDEX.to_owned()) },
                });
            };
            Ok(Some(LegacyDoc { subject, kind, tag, node, layers: m.layers }))
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The referrers of `subjects` at the source and theirs, parents before their referrers.
async fn found_referrers<S: Store>(src: &S, subjects: &[Digest]) -> Result<Vec<FoundReferrer>, CopyError> {
    let mut out: Vec<FoundReferrer> = Vec::new();
    let mut seen: BTreeSet<Digest> = subjects.iter().cloned().collect();
    let mut level: Vec<Digest> = subjects.to_vec();
    for depth in 1..=MAX_REFERRER_DEPTH {
        if level.is_empty() {
            break;
        }
        let listed: Vec<(Digest, Vec<Descriptor>)> = futures_util::stream::iter(level)
            .map(|d| async move { Ok::<_, CopyError>((d.clone(), list_referrers(src, &d, None).await?)) })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        let mut wanted = Vec::new();
        for (subject, entries) in listed {
            for entry in entries {
                if seen.insert(entry.digest.clone()) {
                    wanted.push((subject.clone(), entry));
                }
            }
        }
        if out.len() + wanted.len() > MAX_MANIFESTS {
            return Err(CopyError::TooMuch(format!("the image has more than {MAX_MANIFESTS} referrers")));
        }
        let fetched: Vec<FoundReferrer> = futures_util::stream::iter(wanted)
            .map(|(subject, entry)| async move {
                let raw = src
                    .get_manifest(&ManifestRef::Digest(entry.digest.clone()))
                    .await?
                    .ok_or_else(|| CopyError::NotFound(format!("referrer {}@{}", src.location(), entry.digest)))?;
                let (node, _) = Node::parse(raw, || format!("referrer {}", entry.digest))?;
                Ok::<_, CopyError>(FoundReferrer { subject, entry, node, depth })
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        level = fetched.iter().map(|r| r.node.raw.digest.clone()).collect();
        out.extend(fetched);
    }
    // Referrers found at the last level may have their own: not followed (said in the docs).
    out.sort_by_key(|r| r.depth);
    Ok(out)
}

/// Sends the blobs the destination lacks, [`BLOB_CONCURRENCY`] at a time, each streamed.
async fn copy_blobs<S: Store, D: Store>(
    src: &S,
    dst: &D,
    blobs: BTreeMap<Digest, u64>,
) -> Result<BlobCounts, CopyError> {
    let moved: Vec<Option<u64>> = futures_util::stream::iter(blobs)
        .map(|(digest, size)| async move {
            if dst.has_blob(&digest).await? {
                return Ok::<_, StoreError>(None);
            }
            // Another repository of the same registry: mounted, not sent.
            if let Some(origin) = src.blob_origin() {
                if dst.mount_blob(&digest, &origin).await? {
                    return Ok(None);
                }
            }
            // Registries answer concurrent uploads of one blob with transient failures:
            // the whole transfer is tried again.
            let (digest, size) = (&digest, size);
            reconcile::retrying(|| async move {
                let body = src.open_blob(digest, size).await?;
                dst.put_blob_stream(digest, size, body).await
            })
            .await?;
            Ok(Some(size))
        })
        .buffer_unordered(BLOB_CONCURRENCY)
        .try_collect()
        .await?;
    let mut counts = BlobCounts::default();
    for m in moved {
        match m {
            Some(size) => {
                counts.copied += 1;
                counts.bytes += size;
            }
            None => counts.present += 1,
        }
    }
    Ok(counts)
}

async fn put_node<D: Store>(dst: &D, node: &Node, at: &ManifestRef) -> Result<(), CopyError> {
    let bytes = &node.raw.bytes;
    reconcile::retrying(|| async move { dst.put_manifest(at, &node.media_type, bytes.clone()).await }).await?;
    Ok(())
}

/// Makes `entries` (referrers of `subject`, already written) discoverable at the
/// destination: listed by its referrers API (read back until they are), else in the
/// tag-schema index. Returns what happened, and the read-to-write time when a whole index was
/// written without a lock (to settle).
async fn list_at_destination<D: Store>(
    dst: &D,
    subject: &Digest,
    entries: &[Descriptor],
) -> Result<(Outcome, Option<Duration>), CopyError> {
    if let Some(listed) = dst.get_referrers(subject).await? {
        let outcome = if entries.iter().all(|e| listed.iter().any(|l| l.digest == e.digest)) {
            Outcome::Present
        } else {
            Outcome::Written
        };
        for e in entries {
            referrers::confirm_listed(dst, subject, &e.digest, listed.clone()).await?;
        }
        return Ok((outcome, None));
    }
    let tag = referrers_tag(subject);
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        manifests: entries.to_vec(),
        annotations: None,
    };
    let bytes = serde_json::to_vec(&index).map_err(|e| StoreError::Malformed(e.to_string()))?;
    let node = Node { raw: RawManifest::new(bytes), media_type: OCI_INDEX.to_owned(), blobs: vec![] };
    write_or_merge(dst, &tag, Collection::ReferrersIndex, &node, entries).await
}

/// Writes a legacy attachment manifest at the destination: the source's bytes where there
/// is none, else each missing layer merged in.
async fn put_legacy<D: Store>(dst: &D, doc: &LegacyDoc) -> Result<(Outcome, Option<Duration>), CopyError> {
    write_or_merge(dst, &doc.tag, Collection::AttachmentManifest, &doc.node, &doc.layers).await
}

/// The document `node` (listing `entries`) at `tag` of the destination: written as is when
/// the tag is free (under the store's lock if it has one), else each entry the document
/// there lacks added to it through [`reconcile::ensure_listed`]. Returns what happened, and
/// the read-to-write time of a whole write made without a lock.
async fn write_or_merge<D: Store>(
    dst: &D,
    tag: &str,
    kind: Collection,
    node: &Node,
    entries: &[Descriptor],
) -> Result<(Outcome, Option<Duration>), CopyError> {
    let at = ManifestRef::Tag(tag.to_owned());
    let held = dst.lock_tag(tag).await?;
    let started = tokio::time::Instant::now();
    match dst.get_manifest(&at).await? {
        None => {
            put_node(dst, node, &at).await?;
            let unlocked = match held {
                TagWrites::Locked(_) => None,
                TagWrites::LastWriterWins => Some(started.elapsed()),
            };
            Ok((Outcome::Written, unlocked))
        }
        Some(raw) if raw.digest == node.raw.digest => Ok((Outcome::Present, None)),
        Some(_) => {
            drop(held);
            let mut outcome = Outcome::Present;
            for e in entries {
                if reconcile::ensure_listed(dst, tag, kind, e, Content::Stored).await?.writes > 0 {
                    outcome = Outcome::Merged;
                }
            }
            Ok((outcome, None))
        }
    }
}

/// Documents written whole on a store without locks, to look at again once concurrent
/// writers' writes based on older reads have landed.
#[derive(Default)]
struct Settle {
    written: Vec<(String, Collection, Vec<Descriptor>)>,
    window: Duration,
}

impl Settle {
    fn add(&mut self, tag: String, kind: Collection, entries: Vec<Descriptor>, window: Duration) {
        self.written.push((tag, kind, entries));
        self.window = self.window.max(window);
    }

    /// Waits [`reconcile::settle_time`], then makes sure every entry is still listed
    /// (merging back what a concurrent write dropped).
    async fn run<D: Store>(self, dst: &D) -> Result<(), CopyError> {
        if self.written.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(reconcile::settle_time(self.window)).await;
        let checks = self.written.iter().flat_map(|(tag, kind, entries)| entries.iter().map(move |e| (tag, *kind, e)));
        futures_util::stream::iter(checks)
            .map(|(tag, kind, e)| async move { reconcile::ensure_listed(dst, tag, kind, e, Content::Stored).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parses_and_matches_like_cosign() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches(&serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"})));
        assert!(!p.matches(&serde_json::json!({"os": "linux", "architecture": "amd64"})));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches(&serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v7"})));
        assert!(!v7.matches(&serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v6"})));
        assert!(!v7.matches(&serde_json::json!({"os": "linux", "architecture": "arm"})));
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/amd 64", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(v7.to_string(), "linux/arm/v7");
    }
}
