//! `attach sbom`, `download attestation`, `download sbom`: artifacts next to an image.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;

use sigil::attachments::referrers::{self, Indexing};
use sigil::attachments::{self, legacy_tag, Format, Formats, Kind, Referrer, ATTESTATION_SUFFIX, SBOM_SUFFIX};
use sigil::oci::manifest::{is_sbom_artifact, Manifest, CYCLONEDX_JSON, SPDX_JSON};
use sigil::oci::{BlobFile, ManifestRef, Progress, Store};
use sigil::verify;

use super::exit::{ExitCode, Failure};
use super::files::runtime;
use super::image::{prepare, sign_failure, store_failure, Access, Connector};
use super::stdout::{self, outln};
use super::{AttachSbomArgs, DownloadAttestationArgs, DownloadSbomArgs, SbomType};

/// Largest SBOM attached.
const MAX_SBOM_BYTES: u64 = 4 << 30;

/// Progress on stderr when it is a terminal: a line rewritten at each whole percent.
fn progress(name: String, total: u64) -> Progress {
    if !std::io::stderr().is_terminal() || total == 0 {
        return Arc::new(|_| {});
    }
    let last = AtomicU64::new(u64::MAX);
    Arc::new(move |done: u64| {
        let pct = done.saturating_mul(100) / total;
        if last.swap(pct, Ordering::Relaxed) != pct {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\ruploading {name}: {pct:3}% ({} of {} MiB)", done >> 20, total >> 20);
            if done >= total {
                let _ = writeln!(e);
            }
        }
    })
}

/// Checks the SBOM starts like its format before anything is pushed (it is streamed, not
/// parsed whole).
fn check_sbom_head(path: &std::path::Path, kind: SbomType) -> Result<(), Failure> {
    use std::io::Read;
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| {
        Failure::new(ExitCode::Error, format!("reading {}: {e}", path.display()), "check the --sbom path")
    })?;
    let text = String::from_utf8_lossy(&head[..n]);
    let starts_json = text.trim_start().starts_with('{');
    let marker = match kind {
        SbomType::Spdxjson => "spdxVersion",
        SbomType::Cyclonedx => "bomFormat",
    };
    if !starts_json {
        return Err(Failure::new(
            ExitCode::Error,
            format!("{} is not a JSON document", path.display()),
            "attach sbom takes SPDX JSON (--type spdxjson) or CycloneDX JSON (--type cyclonedx)",
        ));
    }
    if n < head.len() && !text.contains(marker) {
        return Err(Failure::new(
            ExitCode::Error,
            format!("{} has no {marker:?} field: not a {kind:?} document", path.display()),
            "check the file and --type",
        ));
    }
    Ok(())
}

/// `sigil attach sbom`.
pub fn attach_sbom(args: AttachSbomArgs) -> Result<ExitCode, Failure> {
    check_sbom_head(&args.sbom, args.sbom_type)?;
    let media_type = match args.sbom_type {
        SbomType::Spdxjson => SPDX_JSON,
        SbomType::Cyclonedx => CYCLONEDX_JSON,
    };
    let file = BlobFile::hash(&args.sbom, MAX_SBOM_BYTES)
        .map_err(|e| Failure::new(ExitCode::Error, format!("{}: {e}", args.sbom.display()), "check the --sbom file"))?;
    let mut conn = Connector::new(&args.registry)?;
    let mut prepared = prepare(&mut conn, std::slice::from_ref(&args.image), None, Access::Write)?;
    let p = prepared.pop().ok_or_else(|| Failure::new(ExitCode::Usage, "no image given", "pass an image"))?;
    // No timestamp annotation: the same SBOM attached twice is the same artifact (one entry).
    let annotations = Default::default();
    let name = args.sbom.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prog = progress(name, file.size);
    let rt = runtime()?;
    let res = rt.block_on(referrers::attach_artifact(
        &p.image_store,
        &p.subject.reference,
        &file,
        media_type,
        annotations,
        prog,
    ));
    let done = res.map_err(|e| sign_failure(&p.display, "SBOM", e))?;
    let how = match &done.indexing {
        Indexing::ReferrersApi => "listed by the registry's referrers API".to_owned(),
        Indexing::TagSchema { tag, .. } => format!("listed in the referrers index {}:{tag}", p.image_store.location()),
    };
    eprintln!(
        "{}@{}: SBOM {} ({} bytes, {media_type}) attached as {}; {how}",
        p.subject.repository, done.image, file.digest, file.size, done.manifest
    );
    eprintln!("note: the SBOM is not signed; attest it (`sigil attest --type spdxjson|cyclonedx`) to sign it");
    outln!("{}", json!({"image": p.display, "attached": done}));
    Ok(ExitCode::Ok)
}

/// Why a download stopped.
enum DownloadError {
    /// Reading from the registry or layout.
    Store(sigil::oci::StoreError),
    /// stdout takes no more output: its reader went away (quiet), or a write failed
    /// (reported by `stdout::finish`).
    Stopped,
}

impl From<sigil::oci::StoreError> for DownloadError {
    fn from(e: sigil::oci::StoreError) -> Self {
        DownloadError::Store(e)
    }
}

/// A listing failure is a store failure (a malformed manifest: the registry's data).
fn find_error(e: attachments::FindError) -> DownloadError {
    match e {
        attachments::FindError::Store(s) => DownloadError::Store(s),
        other => DownloadError::Store(sigil::oci::StoreError::Malformed(other.to_string())),
    }
}

/// Over --max-blob-size is the user's limit (exit 1, raise it); the rest is "could not read".
fn download_failure(e: DownloadError) -> Failure {
    match e {
        DownloadError::Store(e @ sigil::oci::StoreError::TooLarge { .. }) => {
            Failure::new(ExitCode::Error, e.to_string(), "raise --max-blob-size to read it")
        }
        DownloadError::Store(e) => store_failure(&e),
        // Not reached: both downloads end with exit 0 here, and `stdout::finish` turns a
        // write error into a failure.
        DownloadError::Stopped => Failure::new(ExitCode::Error, "stdout was closed", "see the message above"),
    }
}

/// Writes one document and a newline (unless it ends with one), as soon as it is read: the
/// downloads hold one blob in memory at a time. Once stdout takes no more, the download stops
/// (nothing more is fetched).
fn emit(body: &[u8]) -> Result<(), DownloadError> {
    stdout::write_all(body);
    if !body.ends_with(b"\n") {
        stdout::write_all(b"\n");
    }
    if stdout::is_open() {
        Ok(())
    } else {
        Err(DownloadError::Stopped)
    }
}

fn not_found(image: &str) -> Failure {
    Failure::new(ExitCode::ImageNotFound, format!("image {image} not found"), "check the reference and tag")
}

/// `sigil download attestation`.
pub fn download_attestation(args: DownloadAttestationArgs) -> Result<ExitCode, Failure> {
    let want = args.predicate_type.as_deref().map(super::image::predicate_uri).transpose()?;
    let mut conn = Connector::new(&args.registry)?;
    let mut prepared = prepare(&mut conn, std::slice::from_ref(&args.image), args.sig_repo.get(), Access::ReadOnly)?;
    let p = prepared.pop().ok_or_else(|| Failure::new(ExitCode::Usage, "no image given", "pass an image"))?;
    let rt = runtime()?;
    let res: Result<Option<usize>, DownloadError> = rt.block_on(async {
        let Some(digest) = verify::image_digest(&p.image_store, &p.subject.reference).await? else {
            return Ok(None);
        };
        let formats = args.format.map_or(Formats::Any, Formats::Only);
        let too_large = |_| sigil::oci::StoreError::TooLarge { what: "attestation", limit: args.limit.bytes() };
        // The signed statement's predicate type, not an annotation (unverified either way:
        // download does not check signatures).
        let predicate_type = |envelope: Option<sigil::dsse::Envelope>| {
            envelope
                .and_then(|e| e.payload_bytes().ok())
                .and_then(|p| sigil::intoto::Statement::parse(&p).ok())
                .map(|s| s.predicate_type)
        };
        let wanted = |pt: &Option<String>| want.is_none() || pt.as_deref() == want.as_deref();
        let mut printed = 0;
        if formats.includes(Format::Legacy) {
            let layers =
                attachments::legacy_layers(&p.sig_store, &digest, ATTESTATION_SUFFIX).await.map_err(find_error)?;
            for l in layers {
                if l.size > args.limit.bytes() {
                    return Err(too_large(()).into());
                }
                let blob = p.sig_store.get_blob(&l.digest, args.limit.bytes()).await?;
                if wanted(&predicate_type(sigil::dsse::Envelope::parse(&blob).ok())) {
                    emit(&blob)?;
                    printed += 1;
                }
            }
        }
        if formats.includes(Format::Bundle) {
            let (entries, _) =
                attachments::bundle_entries(&p.sig_store, &digest, Kind::Attestation).await.map_err(find_error)?;
            for e in entries {
                let layer = match attachments::bundle_layer(&p.sig_store, &e, &digest).await? {
                    Ok(Referrer::Bundle(b)) => b.layer,
                    Ok(Referrer::Other) => continue,
                    Err(problem) => {
                        eprintln!("skipped: {problem}");
                        continue;
                    }
                };
                if layer.size > args.limit.bytes() {
                    return Err(too_large(()).into());
                }
                let blob = p.sig_store.get_blob(&layer.digest, args.limit.bytes()).await?;
                let pt = predicate_type(sigil::verify::image_bundle::bundle_envelope(&blob).ok());
                let is_signature = pt.as_deref() == Some(sigil::predicates::COSIGN_SIGN_V1);
                if !is_signature && wanted(&pt) {
                    emit(&blob)?;
                    printed += 1;
                }
            }
        }
        Ok(Some(printed))
    });
    let printed = match res {
        Ok(Some(n)) => n,
        Ok(None) => return Err(not_found(&args.image)),
        Err(DownloadError::Stopped) => return Ok(ExitCode::Ok),
        Err(e) => return Err(download_failure(e)),
    };
    eprintln!("{printed} attestation(s) printed (unverified; use verify-attestation to check them)");
    if printed == 0 {
        return Ok(ExitCode::NoSignatures);
    }
    Ok(ExitCode::Ok)
}

/// `sigil download sbom`.
pub fn download_sbom(args: DownloadSbomArgs) -> Result<ExitCode, Failure> {
    let mut conn = Connector::new(&args.registry)?;
    let mut prepared = prepare(&mut conn, std::slice::from_ref(&args.image), None, Access::ReadOnly)?;
    let p = prepared.pop().ok_or_else(|| Failure::new(ExitCode::Usage, "no image given", "pass an image"))?;
    let rt = runtime()?;
    let limit = args.limit.bytes();
    let res: Result<Option<usize>, DownloadError> = rt.block_on(async {
        let Some(digest) = verify::image_digest(&p.image_store, &p.subject.reference).await? else {
            return Ok(None);
        };
        let mut printed = 0;
        let mut print = |media_type: &str, body: Vec<u8>| {
            eprintln!("SBOM {media_type}, {} bytes (unsigned unless attested)", body.len());
            printed += 1;
            emit(&body)
        };
        let check = |size: u64| {
            if size > limit {
                Err(sigil::oci::StoreError::TooLarge { what: "SBOM", limit })
            } else {
                Ok(())
            }
        };
        for entry in referrers::list_referrers(&p.image_store, &digest, None).await? {
            if !entry.artifact_type.as_deref().is_some_and(is_sbom_artifact) {
                continue;
            }
            let layer = referrers::artifact_layer(&p.image_store, &entry, &digest).await?;
            check(layer.size)?;
            print(&layer.media_type, p.image_store.get_blob(&layer.digest, limit).await?)?;
        }
        // cosign's (deprecated) `attach sbom` tag.
        let tag = legacy_tag(&digest, SBOM_SUFFIX);
        if let Some(raw) = p.image_store.get_manifest(&ManifestRef::Tag(tag.clone())).await? {
            match Manifest::parse(&raw.bytes) {
                Ok(Manifest::Image(m)) => {
                    for l in m.layers {
                        check(l.size)?;
                        print(&l.media_type, p.image_store.get_blob(&l.digest, limit).await?)?;
                    }
                }
                _ => return Err(sigil::oci::StoreError::Malformed(format!("{tag} is not an image manifest")).into()),
            }
        }
        Ok(Some(printed))
    });
    match res {
        Ok(Some(0)) => {
            eprintln!("no SBOM attached to {}", args.image);
            Ok(ExitCode::NoSignatures)
        }
        Ok(Some(_)) => Ok(ExitCode::Ok),
        Ok(None) => Err(not_found(&args.image)),
        Err(DownloadError::Stopped) => Ok(ExitCode::Ok),
        Err(e) => Err(download_failure(e)),
    }
}
