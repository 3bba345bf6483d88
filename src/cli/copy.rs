//! `sigil copy`: the flags turned into a [`sigil::copy::CopyRequest`], the two stores, the
//! report printed.

use std::collections::BTreeSet;

use clap::Args;
use serde_json::json;

use sigil::attachments::saved;
use sigil::copy::{self, Arrangement, CopyError, CopyReport, Existing, Part, Platform, Target};
use sigil::oci::layout::LayoutStore;
use sigil::oci::{Backend, ManifestRef};
use sigil::reconcile::ReconcileError;
use sigil::reference::{ImageRef, Selector};

use super::exit::{ExitCode, Failure};
use super::files::runtime;
use super::image::{store_failure, Connector};
use super::stdout::outln;
use super::{Output, RegistryArgs};

/// `sigil copy SRC DST`.
#[derive(Args, Debug)]
pub(crate) struct CopyArgs {
    /// Copy only these parts (comma-separated): image, sig, att, sbom, referrers. Everything by
    /// default. As with cosign, `--only sig,att` copies the attachments and leaves the image
    /// and the destination tag alone.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// From an index, copy only the image of this platform (os/architecture[/variant], e.g.
    /// linux/amd64) with what is attached to it; it becomes the image at the destination.
    #[arg(long, value_parser = Platform::parse)]
    platform: Option<Platform>,
    /// Point the destination tag at the copied image even when it names another image.
    #[arg(long, short = 'f')]
    force: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Format of stdout.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Output,
    /// The image: [REGISTRY/]REPO[:TAG][@DIGEST] or oci:PATH[:TAG|@DIGEST].
    source: String,
    /// Where it goes: [REGISTRY/]REPO[:TAG][@DIGEST] or oci:PATH[:TAG] (a layout is created
    /// if missing). Without a tag, the source's tag (`latest` when the source is named by
    /// digest only).
    destination: String,
}

fn parse(s: &str, what: &str) -> Result<ImageRef, Failure> {
    ImageRef::parse(s).map_err(|e| {
        Failure::new(
            ExitCode::Usage,
            format!("{what} {s}: {e}"),
            "images are [REGISTRY/]REPO[:TAG][@sha256:DIGEST] or oci:PATH[:TAG|@DIGEST]",
        )
    })
}

/// Whether a registry reference string names a tag or digest itself (the parser fills in
/// `latest` when it does not).
fn names_version(s: &str) -> bool {
    let last = s.rsplit('/').next().unwrap_or(s);
    last.contains(':') || last.contains('@')
}

/// Where the image goes: the destination's own tag or digest, else the source's tag.
fn target(dst: &ImageRef, dst_text: &str, source_tag: Option<&str>) -> Target {
    let given = match dst {
        ImageRef::Registry(r) if names_version(dst_text) => Some(r.selector().clone()),
        ImageRef::Registry(_) => None,
        ImageRef::Layout(l) => l.selector().cloned(),
    };
    match given {
        Some(Selector::Tag(t)) => Target::Tag(t),
        Some(Selector::Digest(d)) => Target::Digest(d),
        Some(Selector::TagAndDigest(t, d)) => Target::TagAt(t, d),
        None => Target::Tag(source_tag.unwrap_or("latest").to_owned()),
    }
}

/// `sigil copy`.
pub fn copy(args: CopyArgs) -> Result<ExitCode, Failure> {
    let src_ref = parse(&args.source, "source")?;
    let dst_ref = parse(&args.destination, "destination")?;
    let mut conn = Connector::new(&args.registry)?;
    let src = conn.image_store(&src_ref)?;
    let rt = runtime()?;
    let mut arrangement = Arrangement::Tags;
    let (source, source_tag) = match &src_ref {
        ImageRef::Registry(r) => match r.selector() {
            Selector::Tag(t) => (ManifestRef::Tag(t.clone()), Some(t.clone())),
            Selector::Digest(d) | Selector::TagAndDigest(_, d) => (ManifestRef::Digest(d.clone()), None),
        },
        ImageRef::Layout(l) => match l.selector() {
            Some(Selector::Tag(t)) => (ManifestRef::Tag(t.clone()), Some(t.clone())),
            Some(Selector::Digest(d) | Selector::TagAndDigest(_, d)) => (ManifestRef::Digest(d.clone()), None),
            None => {
                let Backend::Layout(s) = &src else {
                    return Err(Failure::new(
                        ExitCode::Error,
                        "internal: a layout reference opened a registry",
                        "report this bug",
                    ));
                };
                // A layout `cosign save` wrote names its image by cosign's marks.
                let index = rt.block_on(s.index()).map_err(|e| store_failure(&e))?;
                let marked = saved::read(&index).map_err(|e| {
                    Failure::new(
                        ExitCode::Error,
                        format!("{}: {e}", args.source),
                        "repair the layout, or name the image: oci:PATH:TAG or oci:PATH@DIGEST",
                    )
                })?;
                if let Some(marked) = marked {
                    arrangement = Arrangement::CosignSave(marked.clone());
                    (ManifestRef::Digest(marked.image), None)
                } else {
                    match rt.block_on(s.only_image()).map_err(|e| store_failure(&e))? {
                        Some(d) => (ManifestRef::Digest(d), None),
                        None => {
                            return Err(Failure::new(
                                ExitCode::ImageNotFound,
                                format!("{}: the layout holds no image", args.source),
                                "check the oci: path",
                            ))
                        }
                    }
                }
            }
        },
    };
    let dst = match &dst_ref {
        ImageRef::Registry(r) => conn.store_for(r)?,
        ImageRef::Layout(l) => LayoutStore::create(l.path())
            .map(|s| Backend::Layout(s.with_timeout(std::time::Duration::from_secs(args.registry.timeout))))
            .map_err(|e| store_failure(&e))?,
    };
    let parts: BTreeSet<Part> =
        if args.only.is_empty() { Part::ALL.into_iter().collect() } else { args.only.iter().copied().collect() };
    let req = copy::CopyRequest {
        source,
        target: target(&dst_ref, &args.destination, source_tag.as_deref()),
        parts,
        platform: args.platform.clone(),
        existing: if args.force { Existing::Replace } else { Existing::Refuse },
        arrangement,
    };
    let report = rt.block_on(copy::copy(&src, &dst, &req)).map_err(|e| failure(&args, e))?;
    if let Backend::Layout(layout) = &dst {
        // cosign reads a layout only by its own marks: add them while it holds one image.
        let marked = rt.block_on(async {
            let Some(marks) = saved::marks(&layout.index().await?)? else { return Ok(false) };
            layout.annotate(saved::KIND, marks).await.map(|()| true)
        });
        match marked {
            Ok(true) => {}
            Ok(false) => eprintln!(
                "note: {} holds more than one image, so it is not marked for `cosign load` (cosign's layouts hold one)",
                args.destination
            ),
            Err(e) => return Err(store_failure(&e)),
        }
    }
    render(&args, &report);
    Ok(ExitCode::Ok)
}

fn render(args: &CopyArgs, r: &CopyReport) {
    let at = r.tag.as_deref().map(|t| format!(" (tag {t})")).unwrap_or_default();
    eprintln!(
        "copied {} to {}{at}: {} blobs sent ({} bytes), {} already there; {} attachments",
        r.digest,
        args.destination,
        r.blobs.copied,
        r.blobs.bytes,
        r.blobs.present,
        r.attachments.len()
    );
    match args.output {
        Output::Json => outln!(
            "{}",
            json!({
                "source": args.source,
                "destination": args.destination,
                "digest": r.digest,
                "mediaType": r.media_type,
                "tag": r.tag,
                "manifests": r.manifests,
                "blobs": r.blobs,
                "attachments": r.attachments,
            })
        ),
        Output::Text => {
            let at = r.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default();
            outln!("📦 {} → {}{at} ({})", args.source, args.destination, r.digest);
            outln!(
                "   {} manifests written; {} blobs sent ({} bytes), {} already there",
                r.manifests,
                r.blobs.copied,
                r.blobs.bytes,
                r.blobs.present
            );
            for a in &r.attachments {
                let kind =
                    serde_json::to_value(a.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                let outcome = serde_json::to_value(a.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                outln!("└── {kind} {} ({} entries, {outcome})", a.reference, a.entries);
            }
        }
    }
}

fn failure(args: &CopyArgs, e: CopyError) -> Failure {
    let what = format!("copying {} to {}", args.source, args.destination);
    match e {
        CopyError::NotFound(x) => Failure::new(
            ExitCode::ImageNotFound,
            format!("{what}: {x} not found"),
            "check the source reference (and, for an index, that every child it lists is there)",
        ),
        CopyError::Store(s) | CopyError::Reconcile(ReconcileError::Store(s)) => {
            let f = store_failure(&s);
            Failure { message: format!("{what}: {}", f.message), code: ExitCode::Error, ..f }
        }
        e @ CopyError::TagTaken { .. } => Failure::new(
            ExitCode::Error,
            format!("{what}: {e}"),
            "pass --force to point the tag at the copied image, or copy to another tag",
        ),
        e @ CopyError::Platform(_) => {
            Failure::new(ExitCode::Error, format!("{what}: {e}"), "pass one of the platforms the index has")
        }
        e @ CopyError::Reconcile(ReconcileError::Unconfirmed { .. }) => Failure::new(
            ExitCode::Error,
            format!("{what}: an attachment may not be listed at the destination: {e}"),
            "run the same copy again: it adds what is missing and nothing that is already there",
        ),
        e => Failure::new(
            ExitCode::Error,
            format!("{what}: {e}"),
            "inspect the source with `sigil tree`; nothing at the destination was replaced",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_without_tag_takes_the_source_tag() {
        let t = |dst: &str, src_tag: Option<&str>| target(&ImageRef::parse(dst).unwrap(), dst, src_tag);
        assert_eq!(t("localhost:5000/app", Some("v1")), Target::Tag("v1".into()));
        assert_eq!(t("localhost:5000/app", None), Target::Tag("latest".into()));
        assert_eq!(t("localhost:5000/app:v2", Some("v1")), Target::Tag("v2".into()));
        assert_eq!(t("oci:/tmp/x", Some("v1")), Target::Tag("v1".into()));
        assert_eq!(t("oci:/tmp/x:v3", Some("v1")), Target::Tag("v3".into()));
        let d = "sha256:".to_owned() + &"a".repeat(64);
        assert!(matches!(t(&format!("localhost:5000/app@{d}"), Some("v1")), Target::Digest(_)));
        assert!(matches!(t(&format!("localhost:5000/app:v1@{d}"), None), Target::TagAt(..)));
    }
}
