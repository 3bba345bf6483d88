//! A local OCI image layout directory as a [`Store`].
//!
//! Signatures are stored as they would be in a registry: the signature manifest is tagged
//! `sha256-<hex>.sig` through the `org.opencontainers.image.ref.name` annotation of its entry
//! in `index.json`. Writes go to a temporary file renamed into place, so a crash never leaves
//! a half-written `index.json`.
//!
//! A layout is data from whoever wrote the directory, so it is read as the tools that consume
//! it read it, and no further:
//! - A name means the entry of `index.json` that containers/image (skopeo, podman, CRI-O)
//!   would take ([`find_tag`], [`only_image`]); where two entries could be meant, or
//!   `index.json` spells a key that Go's decoder would read differently, the layout is
//!   refused, so sigil and those tools never disagree about which image a tag means.
//! - Files are opened only if they resolve inside the layout, without following a symbolic
//!   link at the last step and without blocking (`O_NOFOLLOW | O_NONBLOCK`), and only if they
//!   are regular files; directories that files are created in must resolve inside the layout.
//!   Reads run on a blocking thread under the same per-request deadline as registry reads.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::manifest::{
    Descriptor, ImageIndex, Manifest, ACCEPTED_MANIFESTS, LAYOUT_INDEX_LIMITS, MAX_MANIFEST_BYTES, OCI_INDEX,
};
use super::{ManifestRef, RawManifest, Store, StoreError};
use crate::digest::Digest;
use crate::json::{FieldProblem, GoStruct};

/// The annotation that names an entry of `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";
const MARKER_FILE: &str = "oci-layout";
const LOCK_FILE: &str = ".index.json.lock";
/// The chunk a streamed blob is read in.
const BLOB_CHUNK: usize = 256 << 10;
/// Held across a whole read-merge-write of a tag by sigil writers (see `lock_tag`).
const TAGS_LOCK_FILE: &str = ".tags.lock";
/// The deadline of one read until [`LayoutStore::with_timeout`] sets another (the registry
/// default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Every file is opened like this: a symbolic link at the last step is an error (`ELOOP`),
/// and a FIFO opens at once instead of waiting for a writer.
const OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// Why a layout is refused, or could not be read in time. All of them mean "could not check".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// Something other than a regular file where sigil reads or writes one (a FIFO blocks).
    #[error("refusing the OCI layout: {path} is {kind}, not a regular file")]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead ("a FIFO", "a directory", …).
        kind: &'static str,
    },
    /// Something other than a directory where sigil creates files.
    #[error("refusing the OCI layout: {path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A symbolic link that resolves outside the layout directory.
    #[error("refusing the OCI layout: {path} is a symbolic link leading outside the layout")]
    LeavesLayout {
        /// The link (or the path through it).
        path: PathBuf,
    },
    /// A symbolic link where sigil creates or opens a file without following links.
    #[error("refusing the OCI layout: {path} is a symbolic link, and sigil does not follow links when opening files")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Two entries of `index.json` that containers/image would consider carry one name.
    #[error("refusing the OCI layout: index.json names {tag:?} twice ({first} and {second}); skopeo and podman would take the first, so sigil takes neither")]
    DuplicateName {
        /// The name (tag).
        tag: String,
        /// The first entry's digest.
        first: Digest,
        /// The second entry's digest.
        second: Digest,
    },
    /// Entries carry the name, but none is an image manifest or index.
    #[error("refusing the OCI layout: index.json names {tag:?} only on entries that are not image manifests or indexes ({media_types:?})")]
    NotAManifest {
        /// The name (tag).
        tag: String,
        /// Their media types.
        media_types: Vec<String>,
    },
    /// No tag was given and the layout holds more than one image.
    #[error("refusing the OCI layout: it holds {count} images and no tag was given")]
    NoImageNamed {
        /// Entries of `index.json`, not counting sigil's attachments.
        count: usize,
    },
    /// An `index.json` key that Go's case-insensitive decoder reads as a field, spelled
    /// otherwise (serde would ignore it, skopeo would not).
    #[error("refusing the OCI layout: index.json has the key {key:?}, which skopeo and podman read as {field:?} but sigil does not")]
    MisspelledKey {
        /// The key as written.
        key: String,
        /// The field Go would read it as.
        field: &'static str,
    },
    /// One key twice in one object of `index.json` (Go keeps the last, serde refuses or
    /// keeps another).
    #[error("refusing the OCI layout: index.json has the key {key:?} twice in one object")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A read did not finish within the per-request deadline (a hung file system).
    #[error("reading {path} did not finish within {timeout:?}")]
    Timeout {
        /// What was being read.
        path: PathBuf,
        /// The deadline.
        timeout: Duration,
    },
}

/// An OCI image layout directory.
pub struct LayoutStore {
    dir: Arc<LayoutDir>,
    timeout: Duration,
}

/// The layout directory, as given (for messages) and resolved (for containment); every file
/// access of the store goes through it.
struct LayoutDir {
    shown: PathBuf,
    real: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

impl LayoutStore {
    /// Opens an existing layout (it must have an `oci-layout` file).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let not_a_layout =
            || StoreError::Io(format!("{} is not an OCI image layout (no oci-layout file)", root.display()));
        let dir = match std::fs::canonicalize(root) {
            Ok(real) => LayoutDir { shown: root.to_owned(), real },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_a_layout()),
            Err(e) => return Err(io_err("resolving", root, e)),
        };
        if dir.open_file(Path::new(MARKER_FILE))?.is_none() {
            return Err(not_a_layout());
        }
        Ok(LayoutStore { dir: Arc::new(dir), timeout: DEFAULT_TIMEOUT })
    }

    /// Creates (or opens) a layout at `root`.
    pub fn create(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|e| io_err("creating", root, e))?;
        let real = std::fs::canonicalize(root).map_err(|e| io_err("resolving", root, e))?;
        let dir = LayoutDir { shown: root.to_owned(), real };
        dir.dir_for_writing(Path::new("blobs/sha256"))?;
        if !dir.present(MARKER_FILE)? {
            dir.write_atomic(&dir.real, MARKER_FILE, LAYOUT_FILE.as_bytes())?;
        }
        if !dir.present(INDEX_FILE)? {
            let empty = ImageIndex {
                schema_version: 2,
                media_type: Some(OCI_INDEX.into()),
                manifests: vec![],
                annotations: None,
            };
            let bytes = serde_json::to_vec(&empty).map_err(|e| StoreError::Malformed(e.to_string()))?;
            dir.write_atomic(&dir.real, INDEX_FILE, &bytes)?;
        }
        Self::open(root)
    }

    /// Bounds every read by `timeout` (`--timeout`, as for registry requests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.dir.shown
    }

    /// The digest `oci:PATH` (no tag) means; see [`only_image`]. `Ok(None)` when the layout
    /// holds no image.
    pub async fn only_image(&self) -> Result<Option<Digest>, StoreError> {
        self.bounded(INDEX_FILE, |dir| Ok(only_image(&dir.read_index()?)?.map(|d| d.digest.clone()))).await
    }

    /// `index.json`, read and checked as every read of it is.
    pub async fn index(&self) -> Result<ImageIndex, StoreError> {
        self.bounded(INDEX_FILE, |dir| dir.read_index()).await
    }

    /// Sets the annotation `key` of the entries of `index.json` whose digests `values` names
    /// to the value given (entries are otherwise left as they are), under the lock every
    /// writer of `index.json` takes.
    pub async fn annotate(
        &self,
        key: &'static str,
        values: std::collections::BTreeMap<Digest, String>,
    ) -> Result<(), StoreError> {
        let wait = self.timeout;
        self.bounded_within(INDEX_FILE, wait + Duration::from_secs(1), move |dir| {
            let _lock = dir.lock_polling(LOCK_FILE, wait)?;
            let mut index = dir.read_index()?;
            for entry in &mut index.manifests {
                if let Some(v) = values.get(&entry.digest) {
                    entry.annotations.get_or_insert_with(Default::default).insert(key.to_owned(), v.clone());
                }
            }
            let out = serde_json::to_vec(&index).map_err(|e| StoreError::Malformed(e.to_string()))?;
            dir.write_atomic(&dir.real, INDEX_FILE, &out)
        })
        .await
    }

    /// Runs `read` on a thread of its own, waiting at most the per-request deadline (`path`
    /// names what is read, for the message). A plain thread rather than the runtime's
    /// blocking pool: a read that never returns (a hung file system) keeps its thread, but
    /// neither the command nor the runtime's shutdown waits for it.
    async fn bounded<T: Send + 'static>(
        &self,
        path: impl AsRef<Path>,
        read: impl FnOnce(&LayoutDir) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.bounded_within(path, self.timeout, read).await
    }

    /// [`Self::bounded`] with a deadline of its own (waiting for another writer's lock).
    async fn bounded_within<T: Send + 'static>(
        &self,
        path: impl AsRef<Path>,
        limit: Duration,
        read: impl FnOnce(&LayoutDir) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.dir.shown.join(path);
        let dir = Arc::clone(&self.dir);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sigil-layout-read".into())
            .spawn(move || {
                // The receiver is gone only after the deadline: nobody is waiting any more.
                let _ = tx.send(read(&dir));
            })
            .map_err(|e| io_err("starting a thread to read", &path, e))?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Io(format!("reading {}: the reading thread failed", path.display()))),
            Err(_) => Err(LayoutError::Timeout { path, timeout: limit }.into()),
        }
    }
}

impl LayoutDir {
    fn blob_dir(d: &Digest) -> PathBuf {
        Path::new("blobs").join(d.algorithm().name())
    }

    fn blob_path(d: &Digest) -> PathBuf {
        Self::blob_dir(d).join(d.hex())
    }

    /// Whether anything (a dangling link included) is at `name` in the layout's top directory.
    fn present(&self, name: &str) -> Result<bool, StoreError> {
        match std::fs::symlink_metadata(self.real.join(name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("reading", &self.shown.join(name), e)),
        }
    }

    /// Opens `rel` for reading: `Ok(None)` when nothing is there; refused when it resolves
    /// outside the layout or is not a regular file. Never blocks on a FIFO.
    fn open_file(&self, rel: &Path) -> Result<Option<File>, StoreError> {
        let shown = self.shown.join(rel);
        let real = match std::fs::canonicalize(self.real.join(rel)) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("resolving", &shown, e)),
        };
        if !real.starts_with(&self.real) {
            return Err(LayoutError::LeavesLayout { path: self.first_leaving(rel) }.into());
        }
        // A socket refuses open() with an obscure error: name what is there first.
        let meta = std::fs::symlink_metadata(&real).map_err(|e| io_err("reading", &shown, e))?;
        regular_file(&meta, &shown)?;
        let file = File::options().read(true).custom_flags(OPEN_FLAGS).open(&real).map_err(|e| open_err(&shown, e))?;
        // What was opened, not what was looked at: the path may have changed in between.
        regular_file(&file.metadata().map_err(|e| io_err("reading", &shown, e))?, &shown)?;
        Ok(Some(file))
    }

    /// The first step of `rel` that resolves outside the layout (for the message: the link
    /// to remove, not the file behind it).
    fn first_leaving(&self, rel: &Path) -> PathBuf {
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            prefix.push(part);
            let inside = std::fs::canonicalize(self.real.join(&prefix)).is_ok_and(|p| p.starts_with(&self.real));
            if !inside {
                break;
            }
        }
        self.shown.join(prefix)
    }

    /// Reads at most `limit` bytes of `rel`; `Ok(None)` when it does not exist.
    fn read_bounded(&self, rel: &Path, limit: u64, what: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(f) = self.open_file(rel)? else { return Ok(None) };
        let mut buf = Vec::new();
        f.take(limit + 1).read_to_end(&mut buf).map_err(|e| io_err("reading", &self.shown.join(rel), e))?;
        if buf.len() as u64 > limit {
            return Err(StoreError::TooLarge { what, limit });
        }
        Ok(Some(buf))
    }

    /// Reads and parses `index.json`, refusing keys Go would read differently.
    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.shown.join(INDEX_FILE);
        let bytes = self
            .read_bounded(Path::new(INDEX_FILE), LAYOUT_INDEX_LIMITS.bytes as u64, "index.json")?
            .ok_or_else(|| StoreError::Io(format!("{} does not exist", path.display())))?;
        let index = match Manifest::parse_with(&bytes, LAYOUT_INDEX_LIMITS) {
            Ok(Manifest::Index(i)) => i,
            Ok(Manifest::Image(_)) => {
                return Err(StoreError::Malformed(format!("{} is not an image index", path.display())))
            }
            Err(e) => return Err(StoreError::Malformed(format!("{}: {e}", path.display()))),
        };
        check_index_keys(&bytes).map_err(|e| match e {
            KeyCheck::Refused(e) => StoreError::Layout(e),
            KeyCheck::Json(e) => StoreError::Malformed(format!("{}: {e}", path.display())),
        })?;
        Ok(index)
    }

    fn read_manifest_blob(&self, d: &Digest) -> Result<Option<RawManifest>, StoreError> {
        let Some(bytes) = self.read_bounded(&Self::blob_path(d), MAX_MANIFEST_BYTES as u64, "manifest")? else {
            return Ok(None);
        };
        if !d.matches(&bytes) {
            return Err(StoreError::DigestMismatch(d.clone()));
        }
        Ok(Some(RawManifest { bytes, digest: d.clone() }))
    }

    /// The resolved directory `rel`, created one level at a time where missing (never
    /// through a link); refused when it resolves outside the layout or is not a directory.
    fn dir_for_writing(&self, rel: &Path) -> Result<PathBuf, StoreError> {
        let (mut real, mut shown) = (self.real.clone(), self.shown.clone());
        for part in rel.components() {
            real.push(part);
            shown.push(part);
            match std::fs::symlink_metadata(&real) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&real) {
                    // Another writer may have made it meanwhile: checked below like any other.
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_err("creating", &shown, e)),
                },
                Err(e) => return Err(io_err("reading", &shown, e)),
            }
            real = std::fs::canonicalize(&real).map_err(|e| io_err("resolving", &shown, e))?;
            if !real.starts_with(&self.real) {
                return Err(LayoutError::LeavesLayout { path: shown }.into());
            }
            if !real.is_dir() {
                return Err(LayoutError::NotADirectory { path: shown }.into());
            }
        }
        Ok(real)
    }

    /// Writes `name` in the resolved directory `dir` through a new temporary file renamed
    /// into place: neither step follows a link (the temporary file is created exclusively,
    /// and a rename replaces a link rather than writing through it).
    fn write_atomic(&self, dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = dir.join(name);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err("creating a file in", dir, e))?;
        tmp.write_all(bytes).map_err(|e| io_err("writing", &path, e))?;
        persist(tmp, &path)
    }

    /// Opens (creating it if needed) the lock file next to `index.json`, never through a link.
    /// Opens the lock file `name` (see [`Self::open_lock`]) and takes an exclusive lock on it
    /// across processes, waiting at most `wait` for another writer to release it. Blocking:
    /// called on a [`LayoutStore::bounded`] thread. The lock is released when the file closes.
    fn lock_polling(&self, name: &str, wait: Duration) -> Result<File, StoreError> {
        let file = self.open_lock(name)?;
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Io(format!(
                        "{} stayed locked by another writer for {} s; if no sigil is writing this layout, a stale process holds it",
                        self.shown.join(name).display(),
                        wait.as_secs()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", &self.shown.join(name), e)),
            }
        }
    }

    fn open_lock(&self, name: &str) -> Result<File, StoreError> {
        let shown = self.shown.join(name);
        let real = self.real.join(name);
        match std::fs::symlink_metadata(&real) {
            Ok(meta) => regular_file(&meta, &shown)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &shown, e)),
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .custom_flags(OPEN_FLAGS)
            .open(&real)
            .map_err(|e| open_err(&shown, e))?;
        regular_file(&lock.metadata().map_err(|e| io_err("reading", &shown, e))?, &shown)?;
        Ok(lock)
    }
}

/// Refuses anything but a regular file, naming what it is.
fn regular_file(meta: &std::fs::Metadata, path: &Path) -> Result<(), StoreError> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    if t.is_symlink() {
        return Err(LayoutError::Symlink { path: path.to_owned() }.into());
    }
    let kind = if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "something else"
    };
    Err(LayoutError::NotAFile { path: path.to_owned(), kind }.into())
}

/// An open() error; `ELOOP` under `O_NOFOLLOW` means a link appeared at the last step.
fn open_err(path: &Path, e: std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return LayoutError::Symlink { path: path.to_owned() }.into();
    }
    io_err("opening", path, e)
}

/// Syncs a finished temporary file, makes it readable like the files around it (layout files
/// are public data, not the 0600 temporary files get) and renames it to `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().sync_all().map_err(|e| io_err("syncing", path, e))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| io_err("setting permissions of", path, e))?;
    tmp.persist(path).map_err(|e| io_err("renaming into", path, e.error))?;
    Ok(())
}

/// The entry of `index.json` that `oci:PATH:TAG` names, as containers/image resolves it
/// (`getManifestDescriptor` in oci/layout/oci_transport.go, used by skopeo, podman and
/// CRI-O): entries whose `org.opencontainers.image.ref.name` is `tag` and whose media type
/// is an OCI or Docker schema 2 manifest or index, in order; entries of other media types are
/// skipped. containers/image takes the first; a second one refuses the layout here, so the
/// two can never mean different images. A name carried only by other media types is refused
/// (as containers/image does). This is the only tag lookup of the layout, for images and
/// attachments alike.
pub fn find_tag<'i>(index: &'i ImageIndex, tag: &str) -> Result<Option<&'i Descriptor>, LayoutError> {
    let mut found: Option<&Descriptor> = None;
    let mut skipped = Vec::new();
    for entry in index.manifests.iter().filter(|m| m.annotation(REF_NAME) == Some(tag)) {
        if !ACCEPTED_MANIFESTS.contains(&entry.media_type.as_str()) {
            skipped.push(entry.media_type.clone());
            continue;
        }
        if let Some(first) = found {
            return Err(LayoutError::DuplicateName {
                tag: tag.to_owned(),
                first: first.digest.clone(),
                second: entry.digest.clone(),
            });
        }
        found = Some(entry);
    }
    match found {
        None if !skipped.is_empty() => Err(LayoutError::NotAManifest { tag: tag.to_owned(), media_types: skipped }),
        found => Ok(found),
    }
}

/// The entry `oci:PATH` (no tag) names. containers/image takes the only entry of
/// `index.json`, whatever it is, and refuses any other count. sigil first sets aside its own
/// attachment entries ([`is_attachment_tag`]), so that a layout it signed still names its
/// image: sigil may resolve where containers/image refuses, never the other way round, and
/// when both resolve it is the same entry. `Ok(None)`: no image at all.
pub fn only_image(index: &ImageIndex) -> Result<Option<&Descriptor>, LayoutError> {
    let mut images = index.manifests.iter().filter(|d| !d.annotation(REF_NAME).is_some_and(is_attachment_tag));
    match (images.next(), images.count()) {
        (one, 0) => Ok(one),
        (_, more) => Err(LayoutError::NoImageNamed { count: more + 1 }),
    }
}

/// True for cosign attachment tags such as `sha256-<hex>.sig`, and for referrers tag-schema
/// indexes (`sha256-<hex>`).
pub fn is_attachment_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else { return false };
    let hex = rest.split_once('.').map_or(rest, |(h, _)| h);
    let suffix = rest.get(hex.len()..).unwrap_or("");
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(suffix, "" | ".sig" | ".att" | ".sbom")
}

/// The fields of image-spec's Go `Index` and `Descriptor` types (specs-go/v1), as
/// containers/image decodes `index.json`.
/// `index.json` as Go's decoder (containers/image) reads it: the index's fields, and those of
/// each entry of `manifests`.
const INDEX_FIELDS: GoStruct = GoStruct {
    fields: &["schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations"],
    arrays: &[("manifests", &DESCRIPTOR_FIELDS)],
};
const DESCRIPTOR_FIELDS: GoStruct = GoStruct {
    fields: &["mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"],
    arrays: &[],
};

/// Refuses an `index.json` whose keys Go's case-insensitive decoder reads otherwise than
/// serde does (see [`crate::json::misread_fields`]): `"Annotations"` or a second
/// `"manifests"` would name an image for skopeo that sigil never sees.
fn check_index_keys(bytes: &[u8]) -> Result<(), KeyCheck> {
    match crate::json::misread_fields(bytes, &INDEX_FIELDS) {
        Ok(None) => Ok(()),
        Ok(Some(FieldProblem::Misspelled { key, field })) => {
            Err(KeyCheck::Refused(LayoutError::MisspelledKey { key, field }))
        }
        Ok(Some(FieldProblem::Repeated { key })) => Err(KeyCheck::Refused(LayoutError::DuplicateKey { key })),
        Err(e) => Err(KeyCheck::Json(e)),
    }
}

enum KeyCheck {
    Refused(LayoutError),
    Json(serde_json::Error),
}

impl Store for LayoutStore {
    fn location(&self) -> String {
        format!("oci:{}", self.dir.shown.display())
    }

    async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<RawManifest>, StoreError> {
        match r {
            ManifestRef::Digest(d) => {
                let d = d.clone();
                self.bounded(LayoutDir::blob_path(&d), move |dir| dir.read_manifest_blob(&d)).await
            }
            ManifestRef::Tag(t) => {
                let t = t.clone();
                self.bounded(INDEX_FILE, move |dir| {
                    let index = dir.read_index()?;
                    let Some(entry) = find_tag(&index, &t)? else { return Ok(None) };
                    match dir.read_manifest_blob(&entry.digest)? {
                        Some(m) => Ok(Some(m)),
                        None => Err(StoreError::BlobNotFound(entry.digest.clone())),
                    }
                })
                .await
            }
        }
    }

    async fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let digest = digest.clone();
        self.bounded(LayoutDir::blob_path(&digest), move |dir| {
            let bytes = dir
                .read_bounded(&LayoutDir::blob_path(&digest), limit, "blob")?
                .ok_or_else(|| StoreError::BlobNotFound(digest.clone()))?;
            if !digest.matches(&bytes) {
                return Err(StoreError::DigestMismatch(digest));
            }
            Ok(bytes)
        })
        .await
    }

    async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let dir = self.dir.dir_for_writing(&LayoutDir::blob_dir(&d))?;
        // Anything already there (even a link) is left alone: reads check it.
        if std::fs::symlink_metadata(dir.join(d.hex())).is_err() {
            self.dir.write_atomic(&dir, d.hex(), &bytes)?;
        }
        Ok(d)
    }

    async fn put_manifest(&self, r: &ManifestRef, media_type: &str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let size = bytes.len() as u64;
        let d = self.put_blob(bytes).await?;
        let tag = match r {
            ManifestRef::Digest(want) if *want != d => return Err(StoreError::DigestMismatch(want.clone())),
            // Untagged manifests (index children) are reachable through their index: blob only.
            ManifestRef::Digest(_) => return Ok(d),
            ManifestRef::Tag(t) => t.clone(),
        };
        let entry = Descriptor {
            media_type: media_type.to_owned(),
            size,
            digest: d.clone(),
            annotations: Some([(REF_NAME.to_owned(), tag.clone())].into_iter().collect()),
            platform: None,
            artifact_type: None,
        };
        // Writers in this and other processes: an exclusive lock on a file next to index.json
        // for the read-modify-write (flock locks each open file, so threads of one process
        // exclude each other too), all of it bounded by the per-request deadline.
        let wait = self.timeout;
        // The lock's own wait ends first, so that a held lock is named as such.
        self.bounded_within(INDEX_FILE, wait + Duration::from_secs(1), move |dir| {
            let _lock = dir.lock_polling(LOCK_FILE, wait)?;
            let mut index = dir.read_index()?;
            index.manifests.retain(|m| m.annotation(REF_NAME) != Some(tag.as_str()));
            index.manifests.push(entry);
            let out = serde_json::to_vec(&index).map_err(|e| StoreError::Malformed(e.to_string()))?;
            dir.write_atomic(&dir.real, INDEX_FILE, &out)
        })
        .await?;
        Ok(d)
    }

    async fn put_blob_file(&self, file: &super::BlobFile, progress: super::Progress) -> Result<(), StoreError> {
        use sha2::Digest as _;
        let dir = self.dir.dir_for_writing(&LayoutDir::blob_dir(&file.digest))?;
        let path = dir.join(file.digest.hex());
        if std::fs::symlink_metadata(&path).is_ok() {
            progress(file.size);
            return Ok(());
        }
        let mut src = File::open(&file.path).map_err(|e| io_err("opening", &file.path, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io_err("creating a file in", &dir, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = src.read(&mut buf).map_err(|e| io_err("reading", &file.path, e))?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > file.size {
                return Err(StoreError::Io(format!("{} grew while being copied", file.path.display())));
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(|e| io_err("writing", &path, e))?;
            progress(done);
        }
        if hex::encode(hasher.finalize()) != file.digest.hex() {
            return Err(StoreError::DigestMismatch(file.digest.clone()));
        }
        persist(tmp, &path)
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let rel = LayoutDir::blob_path(digest);
        self.bounded(rel.clone(), move |dir| Ok(dir.open_file(&rel)?.is_some())).await
    }

    /// Read on a thread of its own (as every layout read is), a chunk at a time, handed over
    /// through a small channel: at most a MiB in flight.
    async fn open_blob(&self, digest: &Digest, size: u64) -> Result<super::BlobStream, StoreError> {
        use futures_util::StreamExt;
        let rel = LayoutDir::blob_path(digest);
        let missing = digest.clone();
        let file =
            self.bounded(rel.clone(), move |dir| dir.open_file(&rel)?.ok_or(StoreError::BlobNotFound(missing))).await?;
        let shown = self.dir.shown.join(LayoutDir::blob_path(digest));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, StoreError>>(2);
        std::thread::Builder::new()
            .name("sigil-layout-blob".into())
            .spawn(move || {
                // One byte more than the size is read, so that a longer file fails the check.
                let mut f = file.take(size.saturating_add(1));
                loop {
                    let mut buf = vec![0u8; BLOB_CHUNK];
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            // The reader is gone (the copy failed elsewhere): stop reading.
                            if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(io_err("reading", &shown, e)));
                            break;
                        }
                    }
                }
            })
            .map_err(|e| io_err("starting a thread to read", &self.dir.shown.join(LayoutDir::blob_path(digest)), e))?;
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }).boxed();
        let allowance = super::blob_allowance(self.timeout, size);
        let by = tokio::time::Instant::now() + allowance;
        Ok(super::checked(super::by_deadline(chunks, by, allowance.as_secs()), digest.clone(), size))
    }

    async fn put_blob_stream(&self, digest: &Digest, size: u64, mut body: super::BlobStream) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        use sha2::Digest as _;
        let dir = self.dir.dir_for_writing(&LayoutDir::blob_dir(digest))?;
        let path = dir.join(digest.hex());
        // Anything already there (even a link) is left alone: reads check it.
        if std::fs::symlink_metadata(&path).is_ok() {
            return Ok(());
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io_err("creating a file in", &dir, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut done = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            done += chunk.len() as u64;
            if done > size {
                return Err(StoreError::TooLarge { what: "blob", limit: size });
            }
            hasher.update(&chunk);
            tmp.write_all(&chunk).map_err(|e| io_err("writing", &path, e))?;
        }
        if done != size || hex::encode(hasher.finalize()) != digest.hex() {
            return Err(StoreError::DigestMismatch(digest.clone()));
        }
        persist(tmp, &path)
    }

    async fn get_referrers(&self, _digest: &Digest) -> Result<Option<Vec<super::manifest::Descriptor>>, StoreError> {
        // An OCI layout has no referrers API: referrers live in the tag schema.
        Ok(None)
    }

    /// One lock for all of the layout's tags: an exclusive lock on `.tags.lock`, a file of its
    /// own because `put_manifest` takes `.index.json.lock` inside it. Polled rather than
    /// blocked on, so that other tasks of this process keep running, and waited for at most
    /// the per-request deadline (`--timeout`).
    async fn lock_tag(&self, _tag: &str) -> Result<super::TagWrites, StoreError> {
        let wait = self.timeout;
        let file = self
            .bounded_within(TAGS_LOCK_FILE, wait + Duration::from_secs(1), move |dir| {
                dir.lock_polling(TAGS_LOCK_FILE, wait)
            })
            .await?;
        Ok(super::TagWrites::Locked(super::TagLock::held(file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: Option<&str>, media_type: &str, seed: &str) -> Descriptor {
        let mut d = Descriptor::of(media_type, seed.as_bytes());
        d.annotations = name.map(|n| [(REF_NAME.to_owned(), n.to_owned())].into_iter().collect());
        d
    }

    fn index(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex { schema_version: 2, media_type: Some(OCI_INDEX.into()), manifests, annotations: None }
    }

    // see: issue 8 §2
    #[test]
    fn layout_tag_resolves_as_containers_image() {
        use super::super::manifest::{DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
        let (a, b) = (entry(Some("v1"), OCI_MANIFEST, "a"), entry(Some("v1"), DOCKER_MANIFEST, "b"));
        let other = entry(Some("v2"), OCI_MANIFEST, "c");
        let blob = entry(Some("v1"), OCI_CONFIG, "d");
        // The one manifest of the name; other names and media types do not count.
        let i = index(vec![blob.clone(), other.clone(), a.clone()]);
        assert_eq!(find_tag(&i, "v1").unwrap(), Some(&a));
        assert_eq!(find_tag(&i, "v3").unwrap(), None);
        // Two manifests of one name: refused, naming both.
        let i = index(vec![a.clone(), other, b.clone()]);
        match find_tag(&i, "v1") {
            Err(LayoutError::DuplicateName { tag, first, second }) => {
                assert_eq!((tag.as_str(), first, second), ("v1", a.digest.clone(), b.digest.clone()))
            }
            r => panic!("{r:?}"),
        }
        // Only non-manifests carry the name: refused, as containers/image does.
        let i = index(vec![blob]);
        assert!(matches!(find_tag(&i, "v1"), Err(LayoutError::NotAManifest { .. })));
    }

    // see: issue 8 §2
    #[test]
    fn layout_without_tag_means_its_only_image() {
        use super::super::manifest::OCI_MANIFEST;
        let img = entry(Some("v1"), OCI_MANIFEST, "a");
        let sig = entry(Some(&format!("sha256-{}.sig", "a".repeat(64))), OCI_MANIFEST, "s");
        assert_eq!(only_image(&index(vec![])).unwrap(), None);
        assert_eq!(only_image(&index(vec![img.clone(), sig.clone()])).unwrap(), Some(&img));
        assert!(matches!(
            only_image(&index(vec![img.clone(), sig, entry(None, OCI_MANIFEST, "b")])),
            Err(LayoutError::NoImageNamed { count: 2 })
        ));
    }

    // see: issue 8 §2
    #[test]
    fn layout_index_keys_are_read_as_go_reads_them() {
        let ok = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"d","size":1,"annotations":{"A":"1","a":"2"},"extra":1}],"other":{"Manifests":1}}"#;
        assert!(check_index_keys(ok).is_ok());
        for (bad, key) in [
            (&br#"{"schemaVersion":2,"manifests":[],"Manifests":[]}"#[..], "Manifests"),
            (br#"{"schemaVersion":2,"manifests":[{"digest":"d","Annotations":{}}]}"#, "Annotations"),
            // Go folds the long s to "s".
            ("{\"schemaVersion\":2,\"manifests\":[{\"annotation\u{17f}\":{}}]}".as_bytes(), "annotation\u{17f}"),
        ] {
            match check_index_keys(bad) {
                Err(KeyCheck::Refused(LayoutError::MisspelledKey { key: k, .. })) => assert_eq!(k, key),
                Err(KeyCheck::Refused(e)) => panic!("{e}"),
                Err(KeyCheck::Json(e)) => panic!("{e}"),
                Ok(()) => panic!("{key} accepted"),
            }
        }
        let twice = br#"{"schemaVersion":2,"manifests":[{"digest":"a","digest":"b"}]}"#;
        assert!(matches!(check_index_keys(twice), Err(KeyCheck::Refused(LayoutError::DuplicateKey { .. }))));
    }

    // see: issue 8 §4
    #[test]
    fn layout_read_deadline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::create(dir.path()).unwrap().with_timeout(Duration::from_millis(100));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = std::time::Instant::now();
        let r = rt.block_on(store.bounded("hung", |_| {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        }));
        assert!(matches!(r, Err(StoreError::Layout(LayoutError::Timeout { .. }))), "{r:?}");
        // Neither the call nor the runtime's shutdown waits for the stuck read.
        drop(rt);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
