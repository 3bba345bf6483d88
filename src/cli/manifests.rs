//! Kubernetes manifests for `gate -f`: read (files or `-` for stdin, bounded), their images
//! listed by [`sigil::workloads`], and with `--pin` written back with each image pinned to the
//! digest judged (files replaced atomically; stdin's manifests go to stdout).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use sigil::gate::Decision;
use sigil::reference::RegistryRef;
use sigil::workloads::{self, Manifest, Pin};

use super::exit::{ExitCode, Failure};
use super::files::read_bounded;
use super::gate::Found;

/// Largest manifest file (or stdin) read.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// One manifest file (or stdin) and what it holds.
pub(super) struct ManifestFile {
    path: PathBuf,
    text: String,
    manifests: Vec<Manifest>,
}

impl ManifestFile {
    fn shown(&self) -> String {
        if self.path.as_os_str() == "-" {
            "(stdin)".into()
        } else {
            self.path.display().to_string()
        }
    }

    /// Every image, with where it was found.
    pub(super) fn found(&self) -> Vec<Found> {
        let mut out = Vec::new();
        for m in &self.manifests {
            for c in &m.images {
                out.push(Found {
                    image: c.image.clone(),
                    source: Some(json!({
                        "file": self.shown(),
                        "document": m.document,
                        "kind": m.kind,
                        "name": m.name,
                        "namespace": m.namespace,
                        "container": c.container,
                        "class": c.class.field(),
                        "pointer": c.pointer,
                    })),
                });
            }
        }
        out
    }
}

/// Reads every `-f` argument.
pub(super) fn read_all(paths: &[PathBuf]) -> Result<Vec<ManifestFile>, Failure> {
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(Failure::new(ExitCode::Usage, "-f - given twice", "read standard input once"));
    }
    paths.iter().map(|p| read_one(p)).collect()
}

fn read_one(path: &Path) -> Result<ManifestFile, Failure> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut b).map_err(|e| {
            Failure::new(ExitCode::Error, format!("cannot read manifests from stdin: {e}"), "check the pipe")
        })?;
        if b.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Failure::new(
                ExitCode::Error,
                format!("manifests on stdin are larger than {MAX_MANIFEST_BYTES} bytes"),
                "split them into several files",
            ));
        }
        b
    } else {
        read_bounded(path, MAX_MANIFEST_BYTES, "manifest file")?
    };
    let shown = if path.as_os_str() == "-" { "(stdin)".to_owned() } else { path.display().to_string() };
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::new(ExitCode::Error, format!("{shown}: not UTF-8"), "manifests are YAML or JSON text"))?;
    let manifests = workloads::parse_manifests(&text).map_err(|e| {
        Failure::new(
            ExitCode::Error,
            format!("{shown}: {e}"),
            "fix the manifest; the gate judges every container image and refuses what it cannot read",
        )
    })?;
    Ok(ManifestFile { path: path.to_owned(), text, manifests })
}

/// Writes each file back with its images pinned to the digests judged; stdin's manifests go to
/// stdout. Called only when every image was admitted.
pub(super) fn pin_all(files: &[ManifestFile], decisions: &[(Found, Decision)]) -> Result<(), Failure> {
    let mut at = 0;
    for f in files {
        let mut pins = Vec::new();
        for m in &f.manifests {
            for c in &m.images {
                let Some((_, d)) = decisions.get(at).filter(|(found, _)| found.image == c.image) else {
                    return Err(Failure::new(
                        ExitCode::Error,
                        format!("{}: {} was not judged; nothing was pinned", f.shown(), c.image),
                        "report this bug",
                    ));
                };
                at += 1;
                let (Ok(r), Some(digest)) = (RegistryRef::parse(&c.image), d.digest()) else {
                    // Admitted unchecked (no rule matches it, and the policy's default allows):
                    // nothing was resolved, nothing is pinned.
                    eprintln!("  - {} ({}): not pinned: no rule applies, nothing was checked", c.image, f.shown());
                    continue;
                };
                if let Some(image) = sigil::gate::pinned(&r, &c.image, digest) {
                    pins.push(Pin { document: m.document, pointer: c.pointer.clone(), image });
                }
            }
        }
        let out = workloads::pin(&f.text, &pins).map_err(|e| {
            Failure::new(
                ExitCode::Error,
                format!("{}: cannot pin: {e}", f.shown()),
                "nothing was written for this file",
            )
        })?;
        if f.path.as_os_str() == "-" {
            // A write error fails the command at the end (stdout::finish).
            super::stdout::write_all(out.as_bytes());
        } else if !pins.is_empty() {
            replace(&f.path, out.as_bytes())?;
            eprintln!("  pinned {} image(s) in {}", pins.len(), f.shown());
        }
    }
    Ok(())
}

/// Replaces `path` atomically (a temporary file in its folder, renamed over it), keeping its
/// permissions.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: &dyn std::fmt::Display| {
        Failure::new(ExitCode::Error, format!("cannot write {}: {e}", path.display()), "check the folder is writable")
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let perms = std::fs::metadata(path).map_err(|e| fail(&e))?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
    tmp.write_all(bytes).map_err(|e| fail(&e))?;
    tmp.as_file().set_permissions(perms).map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}
