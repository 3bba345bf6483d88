//! `sign`, `verify` and `tree`: build stores from references, run the flows, print.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use sigil::attachments::{Format, Formats};
use sigil::oci::auth::{self, Credentials};
use sigil::oci::layout::{LayoutError, LayoutStore};
use sigil::oci::registry::{self, RegistryOptions, RegistryStore, Transport};
use sigil::oci::{Backend, ManifestRef, StoreError};
use sigil::payload::Annotations;
use sigil::predicates::{self, TypeError};
use sigil::reconcile::ReconcileError;
use sigil::reference::{ImageRef, RegistryRef, Selector};
use sigil::sign::{self, Recursion, SignError, SignOutcome, Subject};
use sigil::verify::{self, ImageSigner, Policy, Problem, Verdict, VerifyError};

use super::exit::{ExitCode, Failure};
use super::files::{now_unix, read_bounded, runtime};
use super::keyfiles;
use super::stdout::outln;
use super::{AttestArgs, InspectArgs, Output, RegistryArgs, SignArgs, TreeArgs, VerifyArgs, VerifyAttestationArgs};

/// Everything needed to reach the stores of one command.
pub(super) struct Connector {
    conn: Option<registry::Connection>,
    opts: RegistryOptions,
    args: RegistryArgs,
    creds: std::sync::Mutex<BTreeMap<String, Credentials>>,
    /// The registry that --registry-username/--registry-password are for.
    flag_registry: Option<String>,
}

impl Connector {
    pub(super) fn new(args: &RegistryArgs) -> Result<Self, Failure> {
        let opts = registry_options(args)?;
        Ok(Connector { conn: None, opts, args: args.clone(), creds: Default::default(), flag_registry: None })
    }

    fn credentials(&mut self, registry: &str) -> Result<Credentials, Failure> {
        if let (Some(u), Some(p)) = (&self.args.registry_username, &self.args.registry_password) {
            // Flag credentials belong to one registry: the first one this command talks to.
            let owner = self.flag_registry.get_or_insert_with(|| registry.to_owned());
            if owner == registry {
                return Ok(Credentials::Basic { username: u.clone(), password: zeroize::Zeroizing::new(p.clone()) });
            }
        }
        let mut cache = self
            .creds
            .lock()
            .map_err(|_| Failure::new(ExitCode::Error, "internal lock poisoned", "report this bug"))?;
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let c = auth::from_docker_config(registry).map_err(|e| {
            Failure::new(
                ExitCode::CouldNotCheck,
                e.to_string(),
                "fix the Docker config, or pass --registry-username/--registry-password",
            )
        })?;
        cache.insert(registry.to_owned(), c.clone());
        Ok(c)
    }

    fn registry_store(&mut self, r: &RegistryRef) -> Result<Backend, Failure> {
        let conn = match &self.conn {
            Some(c) => c.clone(),
            None => {
                let c = registry::Connection::new(&self.opts).map_err(|e| store_failure(&e))?;
                self.conn = Some(c.clone());
                c
            }
        };
        let creds = self.credentials(r.registry())?;
        Ok(Backend::Registry(RegistryStore::new(conn, &creds, r.registry(), r.repository(), self.opts.timeout)))
    }

    /// The store for a `--signature-repository` value or the image's own.
    fn signature_store(&mut self, repo: Option<&str>, image: &ImageRef, access: Access) -> Result<Backend, Failure> {
        let bad = |e: &dyn std::fmt::Display| {
            Failure::new(
                ExitCode::Usage,
                format!("invalid signature repository: {e}"),
                "use [REGISTRY/]REPO or oci:PATH",
            )
        };
        match repo {
            None => self.image_store(image),
            Some(s) => match ImageRef::parse(s).map_err(|e| bad(&e))? {
                ImageRef::Registry(r) => self.registry_store(&r),
                ImageRef::Layout(l) => match access {
                    Access::Write => LayoutStore::create(l.path()),
                    Access::ReadOnly => LayoutStore::open(l.path()),
                }
                .map(|s| Backend::Layout(s.with_timeout(self.opts.timeout)))
                .map_err(|e| store_failure(&e)),
            },
        }
    }

    /// The store for a registry image's repository (for writing what the gate attaches).
    pub(super) fn store_for(&mut self, image: &RegistryRef) -> Result<Backend, Failure> {
        self.registry_store(image)
    }

    pub(super) fn image_store(&mut self, image: &ImageRef) -> Result<Backend, Failure> {
        match image {
            ImageRef::Registry(r) => self.registry_store(r),
            ImageRef::Layout(l) => match LayoutStore::open(l.path()) {
                Ok(s) => Ok(Backend::Layout(s.with_timeout(self.opts.timeout))),
                Err(e @ StoreError::Layout(_)) => Err(store_failure(&e)),
                Err(e) => Err(Failure::new(
                    ExitCode::ImageNotFound,
                    e.to_string(),
                    "check the oci: path; it must be an OCI image layout directory",
                )),
            },
        }
    }
}

/// The registry connection options the flags ask for.
pub(super) fn registry_options(args: &RegistryArgs) -> Result<RegistryOptions, Failure> {
    let mut extra_ca_pem = Vec::new();
    if let Some(p) = &args.transport.registry_cacert {
        extra_ca_pem.push(read_bounded(p, 1 << 20, "--registry-cacert")?);
    }
    let transport = if args.transport.allow_http_registry {
        eprintln!("warning: --allow-http-registry: registry traffic may be plain HTTP, unauthenticated and readable on the network");
        Transport::InsecureHttpAllowed
    } else {
        Transport::Https
    };
    Ok(RegistryOptions { transport, extra_ca_pem, timeout: Duration::from_secs(args.timeout) })
}

/// Whether a command writes to the signature repository (only `sign` does).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Reading only: a missing layout is an error, never created.
    ReadOnly,
    /// Signing: a signature layout is created if missing.
    Write,
}

pub(super) fn store_failure(e: &StoreError) -> Failure {
    let hint = match e {
        StoreError::Auth(_) => "log in (docker login) or pass --registry-username/--registry-password",
        StoreError::InsecureRealm { .. } => {
            "the registry's token service must be https:// (its operator sets the realm); sigil sends credentials to a plain-HTTP realm only for a plain-HTTP registry under --allow-http-registry"
        }
        StoreError::Timeout(_) => "check the registry is reachable, or raise --timeout",
        StoreError::Transport(_) => {
            "check the registry address and network; for a plain-HTTP registry pass --allow-http-registry"
        }
        StoreError::TooLarge { .. } => "the registry served more data than sigil accepts; it may be misbehaving",
        StoreError::Layout(LayoutError::Timeout { .. }) => "check the file system holding the layout, or raise --timeout",
        StoreError::Layout(LayoutError::NoImageNamed { .. }) => "name the image: oci:PATH:TAG or oci:PATH@DIGEST",
        StoreError::Layout(_) => {
            "sigil reads only regular files inside the layout, and one image manifest or index per tag; repair or re-create the layout"
        }
        _ => "check the registry or layout contents",
    };
    Failure::new(ExitCode::CouldNotCheck, e.to_string(), hint)
}

fn parse_image(s: &str) -> Result<ImageRef, Failure> {
    ImageRef::parse(s).map_err(|e| {
        Failure::new(
            ExitCode::Usage,
            format!("{s}: {e}"),
            "images are [REGISTRY/]REPO[:TAG][@sha256:DIGEST] or oci:PATH[:TAG|@DIGEST]",
        )
    })
}

/// The manifest reference and payload subject for an image.
fn subject_of(image: &ImageRef, store: &Backend) -> Result<Subject, Failure> {
    match image {
        ImageRef::Registry(r) => {
            let reference = match r.selector() {
                Selector::Tag(t) => ManifestRef::Tag(t.clone()),
                Selector::Digest(d) | Selector::TagAndDigest(_, d) => ManifestRef::Digest(d.clone()),
            };
            Ok(Subject { reference, repository: r.name(), tag: r.selector().tag().map(str::to_owned) })
        }
        ImageRef::Layout(l) => {
            let reference = match l.selector() {
                Some(Selector::Tag(t)) => ManifestRef::Tag(t.clone()),
                Some(Selector::Digest(d)) | Some(Selector::TagAndDigest(_, d)) => ManifestRef::Digest(d.clone()),
                None => match store {
                    // No tag given: the layout's only image (as containers/image resolves it).
                    Backend::Layout(s) => match runtime()?.block_on(s.only_image()).map_err(|e| {
                        let f = store_failure(&e);
                        Failure { message: format!("{image}: {}", f.message), ..f }
                    })? {
                        Some(d) => ManifestRef::Digest(d),
                        None => {
                            return Err(Failure::new(
                                ExitCode::ImageNotFound,
                                format!("{image}: the layout holds no image"),
                                "check the oci: path",
                            ))
                        }
                    },
                    Backend::Registry(_) => ManifestRef::Tag("latest".into()),
                },
            };
            Ok(Subject {
                reference,
                repository: format!("oci:{}", l.path().display()),
                tag: l.selector().and_then(|s| s.tag()).map(str::to_owned),
            })
        }
    }
}

fn annotations(pairs: &[(String, String)]) -> Result<Annotations, Failure> {
    let mut out = Annotations::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v.clone()).is_some() {
            return Err(Failure::new(
                ExitCode::Usage,
                format!("annotation {k:?} given twice"),
                "give each -a key once",
            ));
        }
    }
    Ok(out)
}

pub(super) struct Prepared {
    pub(super) display: String,
    pub(super) image_store: Backend,
    pub(super) sig_store: Backend,
    pub(super) subject: Subject,
}

pub(super) fn prepare(
    conn: &mut Connector,
    images: &[String],
    sig_repo: Option<&str>,
    access: Access,
) -> Result<Vec<Prepared>, Failure> {
    images
        .iter()
        .map(|s| {
            let image = parse_image(s)?;
            let image_store = conn.image_store(&image)?;
            let sig_store = conn.signature_store(sig_repo, &image, access)?;
            let subject = subject_of(&image, &image_store)?;
            Ok(Prepared { display: s.clone(), image_store, sig_store, subject })
        })
        .collect()
}

/// `sigil sign`.
pub fn sign(args: SignArgs) -> Result<ExitCode, Failure> {
    let mut conn = Connector::new(&args.registry)?;
    let prepared = prepare(&mut conn, &args.images, args.sig_repo.get(), Access::Write)?;
    let ann = annotations(&args.annotations)?;
    let recursion = if args.recursive { Recursion::IndexAndChildren } else { Recursion::TopOnly };
    let rt = runtime()?;
    let (format, now) = (args.format, now_unix());
    let logs = super::sigstore::logs_for(format);
    let ready = super::sigstore::prepare(&args.signing, args.key.key.as_deref(), logs, &rt, now)?;
    let locks = sign::TagLocks::default();
    let witnesses = ready.witnesses();
    let (signer, witnesses, ann, locks) = (&ready.signer, &witnesses, &ann, &locks);
    let results = rt.block_on(join_all(prepared.iter().map(|p| async move {
        let r = sign::sign_image(
            &p.image_store,
            &p.sig_store,
            &p.subject,
            signer,
            witnesses,
            ann,
            recursion,
            format,
            now,
            locks,
        )
        .await;
        (p, r)
    })));
    let mut worst = ExitCode::Ok;
    for (p, r) in results {
        match r {
            Ok(signed) => {
                if let ManifestRef::Tag(t) = &p.subject.reference {
                    if let Some(first) = signed.first() {
                        eprintln!(
                            "note: {} (tag {t}) resolved to {}; the digest is what gets signed",
                            p.display, first.digest
                        );
                    }
                }
                for s in &signed {
                    let what = match s.outcome {
                        SignOutcome::Added => "signed",
                        SignOutcome::AlreadyPresent => "already signed with this signature; nothing added",
                    };
                    eprintln!(
                        "{}@{}: {what} ({} format) -> {}",
                        p.subject.repository, s.digest, s.format, s.signature_tag
                    );
                    match args.output {
                        Output::Json => outln!(
                            "{}",
                            json!({"image": p.display, "digest": s.digest, "format": s.format, "signature": s.signature_tag, "signatureManifest": s.signature_manifest, "outcome": s.outcome, "writes": s.writes})
                        ),
                        Output::Text => outln!("{}@{} {}", p.subject.repository, s.digest, s.signature_tag),
                    }
                }
            }
            Err(e) => {
                let f = sign_failure(&p.display, "signature", e);
                eprintln!("{f}");
                if f.code.severity() > worst.severity() {
                    worst = f.code;
                }
            }
        }
    }
    if format == sigil::attachments::Format::Bundle {
        eprintln!("note: stored as Sigstore bundles (OCI 1.1 referrers), as cosign 3 does; skopeo, podman and CRI-O policies read only --format legacy");
    }
    Ok(worst)
}

/// How a failed write is reported; `written` names what was being attached ("signature").
pub(super) fn sign_failure(display: &str, written: &str, e: SignError) -> Failure {
    match e {
        SignError::ImageNotFound(what) => Failure::new(
            ExitCode::ImageNotFound,
            format!("{display}: image {what} not found"),
            "check the reference; push the image first",
        ),
        SignError::Store(s) => {
            let f = store_failure(&s);
            Failure { message: format!("{display}: {}", f.message), code: ExitCode::Error, ..f }
        }
        e @ (SignError::Malformed { .. } | SignError::Attach(ReconcileError::Malformed { .. })) => Failure::new(
            ExitCode::Error,
            format!("{display}: {e}"),
            "inspect it with `sigil tree`; sigil will not overwrite data it cannot read",
        ),
        SignError::Attach(ReconcileError::Store(s)) => sign_failure(display, written, SignError::Store(s)),
        e @ SignError::Attach(ReconcileError::Unconfirmed { .. }) => Failure::new(
            ExitCode::Error,
            format!("{display}: the {written} may not be attached: {e}"),
            "run the same command again: it adds what is missing and nothing that is already there",
        ),
        SignError::Sigstore(e) => {
            let f = super::sigstore::sigstore_failure(e);
            Failure { message: format!("{display}: {}", f.message), ..f }
        }
        e => Failure::new(ExitCode::Error, format!("{display}: {e}"), "see the message above"),
    }
}

/// `sigil verify`.
pub fn verify(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let mut conn = Connector::new(&args.registry)?;
    let prepared = prepare(&mut conn, &args.images, args.sig_repo.get(), Access::ReadOnly)?;
    let flags = SignerFlags::load(args.key.key.as_deref(), &args.keyless, &args.evidence)?;
    let signer = flags.signer()?;
    let ann = annotations(&args.annotations)?;
    let formats = args.format.map_or(Formats::Any, Formats::Only);
    // A simple-signing payload is never read past what its parser accepts.
    let max_blob_bytes = args.limit.within(sigil::payload::MAX_PAYLOAD_BYTES);
    let policy = Policy { signer, annotations: &ann, max_blob_bytes, formats };
    let rt = runtime()?;
    let policy = &policy;
    let results = rt.block_on(join_all(prepared.iter().map(|p| async move {
        let r =
            verify::verify_image(&p.image_store, &p.sig_store, &p.subject.reference, policy, &hints(&p.subject)).await;
        (p, r)
    })));
    let mut worst = ExitCode::Ok;
    let trust = flags.trust.as_ref().map(|t| &t.origin);
    for (p, r) in results {
        let code = report_verdict(p, r, &ann, args.output, trust, &signer);
        if code.severity() > worst.severity() {
            worst = code;
        }
    }
    Ok(worst)
}

/// The verification material named by `--key` or the keyless flags, loaded once.
struct SignerFlags {
    key: Option<sigil::keys::PublicKey>,
    identity: Option<sigil::identity::Matcher>,
    issuer: Option<sigil::identity::Matcher>,
    trust: Option<super::trust::TrustInUse>,
}

impl SignerFlags {
    fn load(key: Option<&str>, keyless: &super::KeylessArgs, evidence: &super::EvidenceArgs) -> Result<Self, Failure> {
        let (identity, issuer) = super::blob::keyless_matchers(keyless)?;
        let key = match key {
            Some(k) if identity.is_none() && issuer.is_none() => Some(keyfiles::load_public_key(k)?),
            Some(_) => {
                return Err(Failure::new(
                    ExitCode::Usage,
                    "--key cannot be combined with certificate identity flags",
                    "choose key-based or keyless verification",
                ))
            }
            None => None,
        };
        let trust = match (&key, evidence.insecure_ignore_tlog) {
            (Some(_), true) => {
                eprintln!("warning: --insecure-ignore-tlog: key signatures are accepted without a transparency-log entry; nothing shows when they were made, or that the signing was ever made public");
                None
            }
            _ => Some(super::trust::load_trust(&keyless.trust)?),
        };
        Ok(SignerFlags { key, identity, issuer, trust })
    }

    /// Key-based or keyless, from the flags given.
    fn signer(&self) -> Result<ImageSigner<'_>, Failure> {
        match (&self.key, &self.identity, &self.issuer, &self.trust) {
            (Some(k), _, _, Some(t)) => Ok(ImageSigner::KeyWithEvidence { key: k, trust: &t.trust }),
            (Some(k), _, _, None) => Ok(ImageSigner::Key(k)),
            (None, Some(identity), Some(issuer), Some(t)) => {
                Ok(ImageSigner::Keyless { identity, issuer, trust: &t.trust })
            }
            _ => Err(Failure::new(
                ExitCode::Usage,
                "verification needs --key, or a certificate identity and an OIDC issuer",
                "pass --key PUB, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]",
            )),
        }
    }
}

/// `trust` is the trusted root of a keyless verification (none for a key).
fn report_verdict(
    p: &Prepared,
    r: Result<Verdict, VerifyError>,
    ann: &Annotations,
    output: Output,
    trust: Option<&super::trust::TrustOrigin>,
    signer: &ImageSigner<'_>,
) -> ExitCode {
    let signer_text = match signer {
        ImageSigner::Keyless { .. } => "keyless, Fulcio certificate",
        ImageSigner::Key(_) | ImageSigner::KeyWithEvidence { .. } => "the given public key",
    };
    eprintln!("Verification for {}:", p.display);
    let rejected_lines = |rejected: &[verify::Examined]| {
        for e in rejected {
            match &e.problem {
                Problem::Rejected(why) => eprintln!("  ✗ {} signature {} rejected: {why}", e.format, e.layer),
                Problem::CouldNotCheck(why) => {
                    eprintln!("  ? {} signature {} could not be checked: {why}", e.format, e.layer)
                }
            }
        }
    };
    match r {
        Ok(Verdict::Verified { digest, signatures, rejected, unread }) => {
            eprintln!("  ✓ image digest {digest}");
            eprintln!("  ✓ signatures read from {}", p.sig_store_location());
            for f in [Format::Legacy, Format::Bundle] {
                let n = signatures.iter().filter(|s| s.get().format == f).count();
                if n > 0 {
                    let how = match f {
                        Format::Legacy => "legacy .sig tag, over the exact payload bytes",
                        Format::Bundle => "Sigstore bundle referrer, DSSE over a cosign sign/v1 statement",
                    };
                    eprintln!("  ✓ {n} signature(s) verified ({how}; {signer_text})");
                }
            }
            eprintln!("  ✓ signed payload names this image digest");
            if !ann.is_empty() {
                eprintln!("  ✓ signed payload carries the required annotations");
            }
            rejected_lines(&rejected);
            if unread > 0 {
                eprintln!(
                    "  ! {unread} older signature layer(s) beyond the newest {} were not read",
                    verify::MAX_SIGNATURES
                );
            }
            match signer {
                ImageSigner::Keyless { .. } => eprintln!("  ✓ certificate chained to a trusted Fulcio CA, identity and issuer matched, transparency-log entry verified"),
                ImageSigner::KeyWithEvidence { .. } => eprintln!("  ✓ transparency-log entry verified (inclusion proof or SET), signing time established"),
                ImageSigner::Key(_) => eprintln!("  ! no transparency-log check (--insecure-ignore-tlog)"),
            }
            let payloads: Vec<serde_json::Value> = signatures.iter().map(|s| s.get().claims.to_json()).collect();
            let formats: Vec<Format> = signatures.iter().map(|s| s.get().format).collect();
            match output {
                Output::Json => {
                    let mut out = json!({"image": p.display, "digest": digest, "verified": true, "signatures": payloads, "formats": formats});
                    if let (Some(t), Some(o)) = (trust, out.as_object_mut()) {
                        o.insert("trustRoot".into(), t.to_json());
                    }
                    outln!("{out}")
                }
                Output::Text => outln!("{} {digest} verified ({} signature(s))", p.display, payloads.len()),
            }
            ExitCode::Ok
        }
        Ok(Verdict::NoSignatures { digest }) => {
            eprintln!("  ✓ image digest {digest}");
            eprintln!("  ✗ no signatures found in {}", p.sig_store_location());
            eprintln!(
                "  hint: sign the image first, or pass --signature-repository if signatures are stored elsewhere"
            );
            ExitCode::NoSignatures
        }
        Ok(Verdict::NoMatchingSignature { digest, rejected, unread }) => {
            eprintln!("  ✓ image digest {digest}");
            rejected_lines(&rejected);
            if unread > 0 {
                eprintln!(
                    "  ! {unread} older signature layer(s) beyond the newest {} were not read",
                    verify::MAX_SIGNATURES
                );
            }
            eprintln!("  ✗ no signature matched: NOT VERIFIED");
            match signer {
                ImageSigner::KeyWithEvidence { .. } => eprintln!("  hint: check the public key and -a annotations match what the image was signed with; a key signature must be recorded in the transparency log of the trusted root (signatures made with --tlog-upload=false verify only with --insecure-ignore-tlog)"),
                ImageSigner::Key(_) => eprintln!("  hint: check the public key and -a annotations match what the image was signed with"),
                ImageSigner::Keyless { .. } => eprintln!("  hint: check the identity, issuer and -a annotations match what the image was signed with, and that --trusted-root is the signer's"),
            }
            ExitCode::NoMatchingSignature
        }
        Ok(Verdict::ImageNotFound) => {
            eprintln!("  ✗ image not found: NOT VERIFIED");
            eprintln!("  hint: check the reference and tag");
            ExitCode::ImageNotFound
        }
        Err(e) => {
            eprintln!("  ? could not check: {e}: NOT VERIFIED");
            let hint = match &e {
                VerifyError::Store(s) => store_failure(s).hint.unwrap_or_default(),
                _ => "the registry holds data sigil cannot read; inspect it with `sigil tree`".into(),
            };
            eprintln!("  hint: {hint}");
            ExitCode::CouldNotCheck
        }
    }
}

/// The names a signer of this image would have written as `docker-reference`.
fn hints(subject: &Subject) -> verify::PayloadHints {
    let mut names = vec![subject.repository.clone()];
    // cosign spells Docker Hub as index.docker.io.
    if let Some(rest) = subject.repository.strip_prefix("docker.io/") {
        names.push(format!("index.docker.io/{rest}"));
    }
    verify::PayloadHints { names, tag: subject.tag.clone() }
}

impl Prepared {
    fn sig_store_location(&self) -> String {
        use sigil::oci::Store;
        self.sig_store.location()
    }
}

/// `sigil tree`.
pub fn tree(args: TreeArgs) -> Result<ExitCode, Failure> {
    use sigil::oci::Store;
    let mut conn = Connector::new(&args.registry)?;
    let mut prepared = prepare(&mut conn, std::slice::from_ref(&args.image), args.sig_repo.get(), Access::ReadOnly)?;
    let p = prepared.pop().ok_or_else(|| Failure::new(ExitCode::Usage, "no image given", "pass an image"))?;
    let rt = runtime()?;
    let res = rt.block_on(async {
        let digest = verify::image_digest(&p.image_store, &p.subject.reference).await?;
        match digest {
            None => Ok(None),
            Some(d) => {
                let a = sigil::inspect::attachments(&p.sig_store, &d).await?;
                let mut r = sigil::attachments::referrers::list_referrers(&p.image_store, &d, None).await?;
                // Bundles stored with --signature-repository are referrers there.
                if p.sig_store.location() != p.image_store.location() {
                    r.extend(sigil::attachments::referrers::list_referrers(&p.sig_store, &d, None).await?);
                }
                Ok(Some((d, a, r)))
            }
        }
    });
    let (digest, attachments, referrers) = match res {
        Ok(Some(x)) => x,
        Ok(None) => {
            return Err(Failure::new(
                ExitCode::ImageNotFound,
                format!("image {} not found", args.image),
                "check the reference and tag",
            ))
        }
        Err(e) => return Err(store_failure(&e)),
    };
    match args.output {
        Output::Json => outln!(
            "{}",
            json!({"image": args.image, "digest": digest, "attachments": attachments, "referrers": referrers})
        ),
        Output::Text => {
            outln!("📦 {} ({digest})", args.image);
            if attachments.is_empty() && referrers.is_empty() {
                outln!("   (nothing attached in {})", p.sig_store.location());
            }
            for a in &attachments {
                let title = match a.kind {
                    "sig" => "Signatures",
                    "att" => "Attestations",
                    _ => "SBOMs",
                };
                outln!("└── 🔐 {title} for {digest}: {} ({}, {} bytes)", a.tag, a.manifest, a.size);
                for l in &a.layers {
                    let pt = l.predicate_type.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
                    outln!("    └── 🍒 {} {} ({} bytes){pt}", l.digest, l.media_type, l.size);
                }
            }
            if !referrers.is_empty() {
                outln!("└── 📄 OCI referrers of {digest} (in {}):", p.image_store.location());
                for r in &referrers {
                    let t = r.artifact_type.as_deref().unwrap_or("(no artifact type)");
                    // Unsigned hints; `verify` reads the signed statement.
                    let what = match r.annotation(sigil::attachments::BUNDLE_PREDICATE_TYPE_ANNOTATION) {
                        Some(sigil::predicates::COSIGN_SIGN_V1) => " — Sigstore bundle: signature".to_owned(),
                        Some(pt) => format!(" — Sigstore bundle: attestation {pt}"),
                        None => String::new(),
                    };
                    outln!("    └── 🍒 {} {t} ({} bytes){what}", r.digest, r.size);
                }
            }
        }
    }
    Ok(ExitCode::Ok)
}

fn type_failure(e: TypeError) -> Failure {
    let hint = match &e {
        TypeError::NotAnAttestation(_) => "sign the image with `sigil sign`; attest with another --type".to_owned(),
        _ => format!("use {}", predicates::names_help()),
    };
    Failure::new(ExitCode::Usage, e.to_string(), hint)
}

pub(super) fn predicate_uri(name: &str) -> Result<String, Failure> {
    predicates::PredicateType::parse(name).map(|t| t.uri).map_err(type_failure)
}

/// `sigil attest`.
pub fn attest(args: AttestArgs) -> Result<ExitCode, Failure> {
    let now = now_unix();
    let what = attestation_input(&args.what, now)?;
    let uri = match &what {
        sign::Attestation::Predicate { predicate_type, .. } => predicate_type.clone(),
        sign::Attestation::Statement { parsed, .. } => parsed.predicate_type.clone(),
    };
    let mut conn = Connector::new(&args.registry)?;
    let prepared = prepare(&mut conn, &args.images, args.sig_repo.get(), Access::Write)?;
    let recursion = if args.recursive { Recursion::IndexAndChildren } else { Recursion::TopOnly };
    let rt = runtime()?;
    let logs = super::sigstore::logs_for(args.format);
    let ready = super::sigstore::prepare(&args.signing, args.key.key.as_deref(), logs, &rt, now)?;
    let locks = sign::TagLocks::default();
    let format = args.format;
    let witnesses = ready.witnesses();
    let (signer, witnesses, locks, what) = (&ready.signer, &witnesses, &locks, &what);
    let results = rt.block_on(join_all(prepared.iter().map(|p| async move {
        let r = sign::attest_image(
            &p.image_store,
            &p.sig_store,
            &p.subject,
            signer,
            witnesses,
            what,
            recursion,
            format,
            now,
            locks,
        )
        .await;
        (p, r)
    })));
    let mut worst = ExitCode::Ok;
    for (p, r) in results {
        match r {
            Ok(done) => {
                for s in &done {
                    eprintln!(
                        "{}@{}: attested ({uri}, {} format) -> {}",
                        p.subject.repository, s.digest, s.format, s.signature_tag
                    );
                    outln!(
                        "{}",
                        json!({"image": p.display, "digest": s.digest, "format": s.format, "attestation": s.signature_tag, "predicateType": uri, "outcome": s.outcome, "writes": s.writes})
                    );
                }
            }
            Err(e) => {
                let f = sign_failure(&p.display, "attestation", e);
                eprintln!("{f}");
                if f.code.severity() > worst.severity() {
                    worst = f.code;
                }
            }
        }
    }
    Ok(worst)
}

/// The statement or predicate to attest, checked before anything is signed.
pub(super) fn attestation_input(args: &super::PredicateArgs, now: i64) -> Result<sign::Attestation, Failure> {
    let (statement, predicate) = (args.statement.as_deref(), args.predicate.as_deref());
    let refuse = |e: &dyn std::fmt::Display, what: &str| {
        Failure::new(ExitCode::Error, e.to_string(), format!("fix the {what} file; nothing was signed"))
    };
    if let Some(path) = statement {
        let bytes = read_bounded(path, sigil::intoto::MAX_PREDICATE_BYTES as u64, "statement")?;
        let parsed = sigil::intoto::Statement::parse(&bytes).map_err(|e| refuse(&e, "statement"))?;
        predicates::check_attestable(&parsed.predicate_type).map_err(type_failure)?;
        return Ok(sign::Attestation::Statement { bytes, parsed });
    }
    let kind = predicates::PredicateType::for_attest(&args.predicate_type).map_err(type_failure)?;
    let path = predicate.ok_or_else(|| {
        Failure::new(ExitCode::Usage, "attest needs --predicate or --statement", "pass --predicate FILE --type TYPE")
    })?;
    let bytes = read_bounded(path, sigil::intoto::MAX_PREDICATE_BYTES as u64, "predicate")?;
    // A malformed predicate names the field at fault.
    let predicate = predicates::build_predicate(&kind, &bytes, &predicates::rfc3339_utc(now))
        .map_err(|e| refuse(&e, "predicate"))?;
    Ok(sign::Attestation::Predicate { predicate_type: kind.uri, predicate })
}

/// `sigil verify-attestation`.
pub fn verify_attestation(args: VerifyAttestationArgs) -> Result<ExitCode, Failure> {
    use sigil::verify::attestation::{self, AttestationPolicy, AttestationVerdict};
    let uri = args.predicate_type.as_deref().map(predicate_uri).transpose()?;
    let mut conn = Connector::new(&args.registry)?;
    let prepared = prepare(&mut conn, &args.images, args.sig_repo.get(), Access::ReadOnly)?;
    let flags = SignerFlags::load(args.key.key.as_deref(), &args.keyless, &args.evidence)?;
    let signer = flags.signer()?;
    let slsa = sigil::policy::SlsaExpectations {
        builder_id: args.builder_id.clone(),
        source_uri: args.source_uri.clone(),
        source_branch: args.source_branch.clone(),
        source_tag: args.source_tag.clone(),
        source_digest: args.source_digest.clone(),
    };
    let how = match signer {
        ImageSigner::Keyless { .. } => {
            "keyless: Fulcio certificate with the identity and issuer, transparency-log entry verified"
        }
        ImageSigner::KeyWithEvidence { .. } => "with the given key, transparency-log entry verified",
        ImageSigner::Key(_) => "with the given key (no transparency-log check: --insecure-ignore-tlog)",
    };
    let policy = AttestationPolicy {
        signer,
        predicate_type: uri.as_deref(),
        // An attestation is never read past what the DSSE parser accepts.
        max_blob_bytes: args.limit.within(sigil::dsse::MAX_ENVELOPE_BYTES),
        slsa: &slsa,
        checks: &args.checks,
        formats: args.format.map_or(Formats::Any, Formats::Only),
    };
    let policy = &policy;
    let rt = runtime()?;
    let results = rt.block_on(join_all(prepared.iter().map(|p| async move {
        (p, attestation::verify_attestations(&p.image_store, &p.sig_store, &p.subject.reference, policy).await)
    })));
    let mut worst = ExitCode::Ok;
    for (p, r) in results {
        eprintln!("Attestation verification for {}:", p.display);
        let rejected_lines = |rejected: &[verify::Examined]| {
            for e in rejected {
                match &e.problem {
                    Problem::Rejected(why) => eprintln!("  ✗ {} attestation {} rejected: {why}", e.format, e.layer),
                    Problem::CouldNotCheck(why) => {
                        eprintln!("  ? {} attestation {} could not be checked: {why}", e.format, e.layer)
                    }
                }
            }
        };
        let code = match r {
            Ok(AttestationVerdict::Verified { digest, statements, rejected }) => {
                eprintln!("  ✓ image digest {digest}");
                eprintln!(
                    "  ✓ {} attestation(s): DSSE signature verified {how}, statement about this digest",
                    statements.len()
                );
                if let Some(u) = &uri {
                    eprintln!("  ✓ predicate type {u}");
                }
                rejected_lines(&rejected);
                for s in &statements {
                    outln!("{}", s.get().statement);
                }
                ExitCode::Ok
            }
            Ok(AttestationVerdict::NoAttestations { digest }) => {
                eprintln!("  ✓ image digest {digest}");
                eprintln!("  ✗ no attestations found: NOT VERIFIED");
                ExitCode::NoSignatures
            }
            Ok(AttestationVerdict::NoMatchingAttestation { digest, rejected }) => {
                eprintln!("  ✓ image digest {digest}");
                rejected_lines(&rejected);
                eprintln!(
                    "  ✗ no attestation verified{}: NOT VERIFIED",
                    uri.as_ref().map(|u| format!(" for {u}")).unwrap_or_default()
                );
                ExitCode::NoMatchingSignature
            }
            Ok(AttestationVerdict::ImageNotFound) => {
                eprintln!("  ✗ image not found: NOT VERIFIED");
                ExitCode::ImageNotFound
            }
            Err(e) => {
                eprintln!("  ? could not check: {e}: NOT VERIFIED");
                ExitCode::CouldNotCheck
            }
        };
        if code.severity() > worst.severity() {
            worst = code;
        }
    }
    Ok(worst)
}

/// `sigil inspect`.
pub fn inspect(args: InspectArgs) -> Result<ExitCode, Failure> {
    use sigil::inspect::{audit, Unverified};
    let mut conn = Connector::new(&args.registry)?;
    let mut prepared = prepare(&mut conn, std::slice::from_ref(&args.image), args.sig_repo.get(), Access::ReadOnly)?;
    let p = prepared.pop().ok_or_else(|| Failure::new(ExitCode::Usage, "no image given", "pass an image"))?;
    let flags = SignerFlags::load(args.key.key.as_deref(), &args.keyless, &args.evidence)?;
    let signer = flags.signer()?;
    let unverified = if args.include_unverified { Unverified::Show } else { Unverified::Hide };
    let rt = runtime()?;
    let res = rt.block_on(async {
        let Some(digest) = verify::image_digest(&p.image_store, &p.subject.reference).await? else {
            return Ok(None);
        };
        audit(&p.image_store, &p.sig_store, &digest, signer, &hints(&p.subject), unverified, args.limit.bytes())
            .await
            .map(Some)
    });
    let report = match res {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(Failure::new(
                ExitCode::ImageNotFound,
                format!("image {} not found", args.image),
                "check the reference and tag",
            ))
        }
        Err(e) => {
            let hint = match &e {
                VerifyError::Store(s) => store_failure(s).hint.unwrap_or_default(),
                _ => "the registry holds data sigil cannot read; inspect it with `sigil tree`".into(),
            };
            return Err(Failure::new(ExitCode::CouldNotCheck, format!("{}: could not check: {e}", args.image), hint));
        }
    };
    match args.output {
        Output::Json => {
            let mut out = json!({"image": args.image, "report": report});
            if let (Some(t), Some(o)) = (&flags.trust, out.as_object_mut()) {
                o.insert("trustRoot".into(), t.origin.to_json());
            }
            outln!("{out}")
        }
        Output::Text => print_report(&args.image, &report),
    }
    Ok(ExitCode::Ok)
}

fn print_report(image: &str, r: &sigil::inspect::AuditReport) {
    use sigil::inspect::SignedBy;
    use sigil::report::Summary;
    let who = |s: &Option<SignedBy>, time: &Option<String>| {
        let by = match s {
            Some(SignedBy::Key) => "the given key".to_owned(),
            Some(SignedBy::Keyless { identity, issuer }) => {
                format!("{} (issuer {})", identity.as_deref().unwrap_or("?"), issuer.as_deref().unwrap_or("?"))
            }
            None => "?".to_owned(),
        };
        match time {
            Some(t) => format!("{by}, logged {t}"),
            None => format!("{by}, no transparency-log time"),
        }
    };
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(not stated)".into());
    outln!("Image {image}");
    outln!("  digest {}", r.digest);
    let verified_sigs = r.signatures.iter().filter(|s| s.verified).count();
    outln!("Signatures: {verified_sigs} verified");
    for s in &r.signatures {
        if s.verified {
            outln!("  ✓ {} ({}) signed by {}", s.layer, s.format, who(&s.signer, &s.time));
        } else {
            outln!("  ✗ UNVERIFIED {} ({}): {}", s.layer, s.format, opt(&s.reason));
        }
    }
    let verified_atts = r.attestations.iter().filter(|a| a.verified).count();
    outln!("Attestations: {verified_atts} verified");
    for a in &r.attestations {
        let pt = opt(&a.predicate_type);
        if a.verified {
            outln!("  ✓ {pt} ({}, {}) signed by {}", a.layer, a.format, who(&a.signer, &a.time));
        } else {
            outln!("  ✗ UNVERIFIED {pt} ({}, {}): {}", a.layer, a.format, opt(&a.reason));
        }
        match &a.summary {
            Some(Summary::SlsaProvenance {
                version,
                builder,
                build_type,
                source_repository,
                source_commit,
                started_on,
                finished_on,
                resolved_dependencies,
                resolved_dependency_count,
            }) => {
                outln!("      SLSA provenance {version}");
                outln!("      builder:    {}", opt(builder));
                outln!("      build type: {}", opt(build_type));
                outln!("      source:     {} @ {}", opt(source_repository), opt(source_commit));
                outln!("      started:    {}   finished: {}", opt(started_on), opt(finished_on));
                outln!("      resolved dependencies: {resolved_dependency_count}");
                for d in resolved_dependencies {
                    outln!("        - {d}");
                }
            }
            Some(Summary::Sbom { format, packages, top_level }) => {
                outln!("      SBOM {format}: {packages} package(s)");
                if !top_level.is_empty() {
                    outln!("      top level: {}", top_level.join(", "));
                }
            }
            Some(Summary::Vulnerabilities { scanner, scanner_version, by_severity, total }) => {
                outln!("      scanner: {} {}", opt(scanner), opt(scanner_version));
                let counts: Vec<String> = by_severity.iter().map(|(k, v)| format!("{k} {v}")).collect();
                outln!(
                    "      findings: {total} ({})",
                    if counts.is_empty() { "none".into() } else { counts.join(", ") }
                );
            }
            Some(Summary::Vex { by_status }) => {
                let counts: Vec<String> = by_status.iter().map(|(k, v)| format!("{k} {v}")).collect();
                outln!("      VEX statements: {}", if counts.is_empty() { "none".into() } else { counts.join(", ") });
            }
            Some(Summary::VerificationSummary {
                verifier,
                verifier_version,
                time_verified,
                resource_uri,
                result,
                verified_levels,
                policy,
                policy_digest,
                input_attestations,
            }) => {
                outln!("      SLSA verification summary: {}", opt(result));
                let versions: Vec<String> = verifier_version.iter().map(|(k, v)| format!("{k} {v}")).collect();
                if versions.is_empty() {
                    outln!("      verifier:   {}", opt(verifier));
                } else {
                    outln!("      verifier:   {} ({})", opt(verifier), versions.join(", "));
                }
                outln!("      verified:   {}", opt(time_verified));
                outln!("      resource:   {}", opt(resource_uri));
                outln!("      policy:     {} @ {}", opt(policy), opt(policy_digest));
                let levels = if verified_levels.is_empty() { "none".into() } else { verified_levels.join(", ") };
                outln!("      levels:     {levels}");
                outln!("      input attestations: {input_attestations}");
            }
            Some(Summary::Other) | None => {}
        }
    }
    for s in &r.sboms {
        outln!("SBOM referrer {} ({}, {} bytes): UNVERIFIED (unsigned)", s.manifest, s.artifact_type, s.size);
        match (&s.summary, &s.reason) {
            (Some(Summary::Sbom { format, packages, top_level }), _) => {
                outln!("      {format}: {packages} package(s); top level: {}", top_level.join(", "))
            }
            (_, Some(why)) => outln!("      could not read it: {why}"),
            _ => {}
        }
    }
    for n in &r.notes {
        outln!("! {n}");
    }
    if r.hidden_unverified > 0 {
        outln!(
            "({} unverified item(s) not shown; pass --include-unverified to see them marked as such)",
            r.hidden_unverified
        );
    }
}
