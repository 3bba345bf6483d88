//! A local OCI image layout directory as a [`Store`].
//!
//! Signatures are stored as they would be in a registry: the signature manifest is tagged
//! `sha256-<hex>.sig` through the `org.opencontainers.image.ref.name` annotation of its entry
//! in `index.json`. Writes go to a temporary file renamed into place, so a crash never leaves
//! a half-written `index.json`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::manifest::{Descriptor, ImageIndex, Manifest, LAYOUT_INDEX_LIMITS, MAX_MANIFEST_BYTES, OCI_INDEX};
use super::{ManifestRef, RawManifest, Store, StoreError};
use crate::digest::Digest;

/// The annotation that names an entry of `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout directory.
pub struct LayoutStore {
    root: PathBuf,
    index_lock: Mutex<()>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

impl LayoutStore {
    /// Opens an existing layout (it must have an `oci-layout` file).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            return Err(StoreError::Io(format!("{} is not an OCI image layout (no oci-layout file)", root.display())));
        }
        Ok(LayoutStore { root: root.to_owned(), index_lock: Mutex::new(()) })
    }

    /// Creates (or opens) a layout at `root`.
    pub fn create(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root.join("blobs/sha256")).map_err(|e| io_err("creating", root, e))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, LAYOUT_FILE.as_bytes())?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let empty = ImageIndex {
                schema_version: 2,
                media_type: Some(OCI_INDEX.into()),
                manifests: vec![],
                annotations: None,
            };
            write_atomic(&index, &serde_json::to_vec(&empty).map_err(|e| StoreError::Malformed(e.to_string()))?)?;
        }
        Self::open(root)
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().name()).join(d.hex())
    }

    /// Reads and parses `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.root.join("index.json");
        let bytes = read_bounded(&path, LAYOUT_INDEX_LIMITS.bytes as u64, "index.json")?;
        match Manifest::parse_with(&bytes, LAYOUT_INDEX_LIMITS) {
            Ok(Manifest::Index(i)) => Ok(i),
            Ok(Manifest::Image(_)) => Err(StoreError::Malformed(format!("{} is not an image index", path.display()))),
            Err(e) => Err(StoreError::Malformed(format!("{}: {e}", path.display()))),
        }
    }

    /// The entries of `index.json` that are images (not attachment tags).
    pub fn image_entries(&self) -> Result<Vec<Descriptor>, StoreError> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter(|d| !d.annotation(REF_NAME).is_some_and(is_attachment_tag))
            .collect())
    }

    fn read_manifest_blob(&self, d: &Digest) -> Result<Option<RawManifest>, StoreError> {
        let path = self.blob_path(d);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_bounded(&path, MAX_MANIFEST_BYTES as u64, "manifest")?;
        if !d.matches(&bytes) {
            return Err(StoreError::DigestMismatch(d.clone()));
        }
        Ok(Some(RawManifest { bytes, digest: d.clone() }))
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

fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, StoreError> {
    let f = std::fs::File::open(path).map_err(|e| io_err("opening", path, e))?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| io_err("reading", path, e))?;
    if buf.len() as u64 > limit {
        return Err(StoreError::TooLarge { what, limit });
    }
    Ok(buf)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err("creating a file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| io_err("writing", path, e))?;
    tmp.as_file().sync_all().map_err(|e| io_err("syncing", path, e))?;
    // Layout files are public data: readable like the files around them, not the 0600 that
    // temporary files get.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io_err("setting permissions of", path, e))?;
    }
    tmp.persist(path).map_err(|e| io_err("renaming into", path, e.error))?;
    Ok(())
}

impl Store for LayoutStore {
    fn location(&self) -> String {
        format!("oci:{}", self.root.display())
    }

    async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<RawManifest>, StoreError> {
        match r {
            ManifestRef::Digest(d) => self.read_manifest_blob(d),
            ManifestRef::Tag(t) => {
                let index = self.read_index()?;
                let entry = index.manifests.iter().rev().find(|m| m.annotation(REF_NAME) == Some(t.as_str()));
                match entry {
                    None => Ok(None),
                    Some(e) => match self.read_manifest_blob(&e.digest)? {
                        Some(m) => Ok(Some(m)),
                        None => Err(StoreError::BlobNotFound(e.digest.clone())),
                    },
                }
            }
        }
    }

    async fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        if !path.exists() {
            return Err(StoreError::BlobNotFound(digest.clone()));
        }
        let bytes = read_bounded(&path, limit, "blob")?;
        if !digest.matches(&bytes) {
            return Err(StoreError::DigestMismatch(digest.clone()));
        }
        Ok(bytes)
    }

    async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let path = self.blob_path(&d);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.root)).map_err(|e| io_err("creating", &path, e))?;
            write_atomic(&path, &bytes)?;
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
        let _guard = self.index_lock.lock().map_err(|_| StoreError::Io("index lock poisoned".into()))?;
        // Other processes writing the same layout: an exclusive lock on a file next to
        // index.json for the read-modify-write (released when the file is closed).
        let lock_path = self.root.join(".index.json.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err("opening", &lock_path, e))?;
        lock.lock().map_err(|e| io_err("locking", &lock_path, e))?;
        let mut index = self.read_index()?;
        index.manifests.retain(|m| m.annotation(REF_NAME) != Some(tag.as_str()));
        let entry = Descriptor {
            media_type: media_type.to_owned(),
            size,
            digest: d.clone(),
            annotations: Some([(REF_NAME.to_owned(), tag)].into_iter().collect()),
            platform: None,
            artifact_type: None,
        };
        index.manifests.push(entry);
        let out = serde_json::to_vec(&index).map_err(|e| StoreError::Malformed(e.to_string()))?;
        write_atomic(&self.root.join("index.json"), &out)?;
        Ok(d)
    }

    async fn put_blob_file(&self, file: &super::BlobFile, progress: super::Progress) -> Result<(), StoreError> {
        use sha2::Digest as _;
        let path = self.blob_path(&file.digest);
        if path.exists() {
            progress(file.size);
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
        let mut src = std::fs::File::open(&file.path).map_err(|e| io_err("opening", &file.path, e))?;
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
        tmp.as_file().sync_all().map_err(|e| io_err("syncing", &path, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| io_err("setting permissions of", &path, e))?;
        }
        tmp.persist(&path).map_err(|e| io_err("renaming into", &path, e.error))?;
        Ok(())
    }

    async fn get_referrers(&self, _digest: &Digest) -> Result<Option<RawManifest>, StoreError> {
        // An OCI layout has no referrers API: referrers live in the tag schema.
        Ok(None)
    }

    /// One lock for all of the layout's tags: an exclusive lock on `.tags.lock`, a file of its
    /// own because `put_manifest` takes `.index.json.lock` inside it. Polled rather than
    /// blocked on, so that other tasks of this process keep running, and waited for at most
    /// [`TAG_LOCK_WAIT`].
    async fn lock_tag(&self, _tag: &str) -> Result<super::TagWrites, StoreError> {
        let path = self.root.join(".tags.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("opening", &path, e))?;
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(super::TagWrites::Locked(super::TagLock::held(file))),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < TAG_LOCK_WAIT => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Io(format!(
                        "{} stayed locked by another writer for {} s",
                        path.display(),
                        TAG_LOCK_WAIT.as_secs()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", &path, e)),
            }
        }
    }
}

/// Longest wait for another process's lock on the layout's tags.
pub const TAG_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
