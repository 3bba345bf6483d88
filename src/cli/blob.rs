//! `verify-blob` and `trusted-root`: Sigstore bundles for files or digests.

use std::io::Read;
use std::path::Path;

use sha2::Digest as _;
use sigil::digest::Digest;
use sigil::identity::Matcher;
use sigil::trust::Trust;
use sigil::verify::bundle::{self, Artifact, Signer};

use super::exit::{ExitCode, Failure};
use super::files::{now_unix, read_bounded, runtime};
use super::stdout::outln;
use super::trust::{load_trust, tuf_repository};
use super::{AttestBlobArgs, KeylessArgs, SignBlobArgs, TrustArgs, UpdateArgs, VerifyBlobArgs};

/// Files up to this size are verified from their bytes; larger ones by streamed digest.
const MAX_IN_MEMORY_ARTIFACT: u64 = 64 << 20;

/// `sigil trusted-root update`.
pub fn update_trusted_root(args: UpdateArgs) -> Result<ExitCode, Failure> {
    let repo = tuf_repository(&args.trust)?;
    let cache = sigil::tuf::cache_dir()
        .ok_or_else(|| Failure::new(ExitCode::Error, "no cache folder (HOME is not set)", "set SIGIL_TUF_CACHE"))?;
    std::fs::create_dir_all(&cache).map_err(|e| {
        Failure::new(
            ExitCode::Error,
            format!("cannot create {}: {e}", cache.display()),
            "set SIGIL_TUF_CACHE to a writable folder",
        )
    })?;
    eprintln!("Refreshing the trusted root from {} through TUF (cache {})", repo.url(), cache.display());
    match runtime()?.block_on(sigil::tuf::update(&repo, &cache, std::time::Duration::from_secs(args.timeout))) {
        Ok((root, published)) => {
            let trust = Trust::from_tuf(root, repo.url(), &repo.cache_folder(&cache).display().to_string());
            eprintln!("  ✓ TUF metadata verified from the pinned root; trusted root cached");
            match published {
                sigil::tuf::Published::SigningConfig => {
                    eprintln!("  ✓ signing configuration verified and cached (used by sign, attest, sign-blob, attest-blob)")
                }
                sigil::tuf::Published::RootOnly => eprintln!("  - the repository publishes no signing configuration"),
            }
            outln!("{}", trust.summary());
            Ok(ExitCode::Ok)
        }
        Err(e) => Err(Failure::new(
            ExitCode::CouldNotCheck,
            format!("could not refresh the trusted root from {}: {e}", repo.url()),
            "check network access to the TUF repository; until then verification uses the cache if it is still valid, else the embedded root (it says which)",
        )),
    }
}

fn matcher(exact: &Option<String>, regexp: &Option<String>, what: &str) -> Result<Option<Matcher>, Failure> {
    match (exact, regexp) {
        (Some(e), None) => Ok(Some(Matcher::Exact(e.clone()))),
        (None, Some(r)) => Matcher::regex(r).map(Some).map_err(|e| {
            Failure::new(
                ExitCode::Usage,
                format!("invalid {what} regular expression: {e}"),
                "use Rust regex syntax; it is anchored at both ends",
            )
        }),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Failure::new(
            ExitCode::Usage,
            format!("give the {what} once"),
            "use either the exact flag or the -regexp one",
        )),
    }
}

/// The identity and issuer matchers of the keyless flags (either may be absent).
pub fn keyless_matchers(k: &KeylessArgs) -> Result<(Option<Matcher>, Option<Matcher>), Failure> {
    Ok((
        matcher(&k.certificate_identity, &k.certificate_identity_regexp, "certificate identity")?,
        matcher(&k.certificate_oidc_issuer, &k.certificate_oidc_issuer_regexp, "OIDC issuer")?,
    ))
}

/// `sigil verify-blob`.
pub fn verify_blob(args: VerifyBlobArgs) -> Result<ExitCode, Failure> {
    let (identity, issuer) = keyless_matchers(&args.keyless)?;
    let key_pem = match &args.key.key {
        Some(k) => Some(
            // A path or env://VAR, as --key of `verify`.
            String::from_utf8(super::keyfiles::read_key_source(k)?).map_err(|_| {
                Failure::new(ExitCode::Error, format!("public key {k} is not PEM text"), "pass a PEM public key")
            })?,
        ),
        None => None,
    };
    let signer = match (&key_pem, &identity, &issuer) {
        (Some(pem), None, None) => Signer::Key(pem),
        (None, Some(id), Some(iss)) => Signer::Identity { identity: id, issuer: iss },
        (Some(_), _, _) => {
            return Err(Failure::new(
                ExitCode::Usage,
                "--key cannot be combined with certificate identity flags",
                "choose key-based or keyless verification",
            ))
        }
        (None, _, _) => {
            return Err(Failure::new(
                ExitCode::Usage,
                "keyless verification needs both an identity and an issuer",
                "pass --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp], or --key",
            ))
        }
    };
    let bundle_bytes = read_bounded(&args.bundle, bundle::MAX_BUNDLE_BYTES as u64, "bundle")?;
    let in_use = load_trust(&args.keyless.trust)?;

    let (bytes, digest);
    let artifact = match args.artifact.strip_prefix("sha256:").map(|_| Digest::parse(&args.artifact)) {
        Some(Ok(d)) => {
            digest = d;
            Artifact::Sha256(&digest)
        }
        Some(Err(e)) => {
            return Err(Failure::new(
                ExitCode::Usage,
                format!("{}: {e}", args.artifact),
                "pass a file or sha256:<64 hex>",
            ))
        }
        None => {
            let path = Path::new(&args.artifact);
            let size = std::fs::metadata(path)
                .map_err(|e| {
                    Failure::new(
                        ExitCode::Error,
                        format!("cannot read artifact {}: {e}", path.display()),
                        "check the path",
                    )
                })?
                .len();
            if size <= MAX_IN_MEMORY_ARTIFACT {
                bytes = read_bounded(path, MAX_IN_MEMORY_ARTIFACT, "artifact")?;
                Artifact::Bytes(&bytes)
            } else {
                digest = stream_sha256(path)?;
                Artifact::Sha256(&digest)
            }
        }
    };
    eprintln!("Verification of {} with bundle {}:", args.artifact, args.bundle.display());
    let checked = match (&signer, args.evidence.insecure_ignore_tlog) {
        (Signer::Key(pem), true) => {
            eprintln!("warning: --insecure-ignore-tlog: the bundle is accepted without a transparency-log entry; nothing shows when it was signed, or that the signing was ever made public");
            let key = sigil::keys::PublicKey::from_pem(pem.as_bytes())
                .map_err(|e| Failure::new(ExitCode::Error, format!("public key: {e}"), "pass a PEM public key"))?;
            bundle::verify_bundle_key_alone(&bundle_bytes, artifact, &key)
        }
        _ => bundle::verify_bundle(&bundle_bytes, artifact, &signer, &in_use.trust),
    };
    match checked {
        Ok(v) => {
            let facts = v.get();
            eprintln!("  ✓ bundle {} parsed", facts.media_type);
            match &facts.identity {
                Some(id) => eprintln!(
                    "  ✓ certificate chains to a trusted Fulcio CA; identity {id:?}, issuer {:?}",
                    facts.issuer.as_deref().unwrap_or("")
                ),
                None => eprintln!("  ✓ signed by the given public key"),
            }
            eprintln!("  ✓ signature over {} verified", facts.artifact);
            if facts.tlog_verified {
                eprintln!("  ✓ transparency-log entry verified (body, inclusion, checkpoint or SET)");
            }
            for t in &facts.timestamps {
                eprintln!("  ✓ signed timestamp {t}");
            }
            for t in &facts.ignored_timestamps {
                eprintln!("  - ignored {t}");
            }
            let mut out = serde_json::to_value(facts).unwrap_or_default();
            if let Some(o) = out.as_object_mut() {
                o.insert("bundle".into(), args.bundle.display().to_string().into());
                o.insert("verified".into(), true.into());
                o.insert("trustRoot".into(), in_use.origin.to_json());
            }
            outln!("{out}");
            Ok(ExitCode::Ok)
        }
        Err(rejection) if rejection.outcome == bundle::Outcome::CouldNotCheck => Err(Failure::new(
            ExitCode::CouldNotCheck,
            format!("could not check: {rejection}"),
            "pass a usable Sigstore trusted_root.json with --trusted-root",
        )),
        Err(rejection) => {
            eprintln!("  ✗ {rejection}: NOT VERIFIED");
            Ok(ExitCode::NoMatchingSignature)
        }
    }
}

/// `sigil sign-blob`.
pub fn sign_blob(args: SignBlobArgs) -> Result<ExitCode, Failure> {
    let digest = stream_sha256(&args.file)?;
    let rt = runtime()?;
    let ready = super::sigstore::prepare(
        &args.signing,
        args.key.key.as_deref(),
        super::sigstore::Logs::PreferV2,
        &rt,
        now_unix(),
    )?;
    let key = ready.signer.private_key();
    let witnesses = ready.witnesses();
    let sha = digest
        .sha256_bytes()
        .ok_or_else(|| Failure::new(ExitCode::Error, format!("{digest} is not a SHA-256 digest"), "report this bug"))?;
    let signature = match key.sign_sha256(&sha, witnesses.nonce()) {
        Some(s) => s,
        // Ed25519 signs the bytes themselves.
        None => key.sign(&read_bounded(&args.file, MAX_IN_MEMORY_ARTIFACT, "file (Ed25519 signs it whole)")?),
    };
    let (bundle_bytes, facts) = rt
        .block_on(witnesses.message_bundle(&ready.signer, &digest, signature))
        .map_err(super::sigstore::sigstore_failure)?;
    write_bundle(&args.bundle, &bundle_bytes)?;
    report_signed(&args.file, &digest, &args.bundle, facts.as_ref().map(|f| f.get()), None);
    Ok(ExitCode::Ok)
}

/// `sigil attest-blob`.
pub fn attest_blob(args: AttestBlobArgs) -> Result<ExitCode, Failure> {
    use sigil::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
    use sigil::sign::Attestation;
    let now = now_unix();
    let digest = stream_sha256(&args.file)?;
    let what = super::image::attestation_input(&args.what, now)?;
    let (statement, predicate_type) = match what {
        Attestation::Predicate { predicate_type, predicate } => {
            let name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (sigil::intoto::Statement::for_image(&name, &digest, &predicate_type, predicate).to_bytes(), predicate_type)
        }
        Attestation::Statement { bytes, parsed } => {
            if !parsed.is_about(&digest) {
                return Err(Failure::new(
                    ExitCode::Error,
                    format!("the statement's subject does not name {digest}; nothing was signed"),
                    "attest the file the statement is about, or fix its subject",
                ));
            }
            (bytes, parsed.predicate_type)
        }
    };
    let rt = runtime()?;
    let ready =
        super::sigstore::prepare(&args.signing, args.key.key.as_deref(), super::sigstore::Logs::PreferV2, &rt, now)?;
    let witnesses = ready.witnesses();
    let envelope = Envelope::sign_with(INTOTO_PAYLOAD_TYPE, &statement, ready.signer.private_key(), witnesses.nonce());
    let (bundle_bytes, facts) = rt
        .block_on(witnesses.dsse_bundle(&ready.signer, &envelope, &digest))
        .map_err(super::sigstore::sigstore_failure)?;
    write_bundle(&args.bundle, &bundle_bytes)?;
    report_signed(&args.file, &digest, &args.bundle, facts.as_ref().map(|f| f.get()), Some(&predicate_type));
    Ok(ExitCode::Ok)
}

/// Writes the bundle next to its final name, then renames it there.
fn write_bundle(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(ExitCode::Error, format!("cannot write the bundle {}: {e}", path.display()), "check the folder")
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(fail)?;
    // A bundle is public (cosign writes it 0644); the temporary file was created 0600.
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(fail)?;
    }
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn report_signed(
    file: &Path,
    digest: &Digest,
    bundle_path: &Path,
    facts: Option<&sigil::verify::bundle::BundleFacts>,
    predicate_type: Option<&str>,
) {
    let what = if predicate_type.is_some() { "attested" } else { "signed" };
    eprintln!("{}: {what} ({digest}) -> {}", file.display(), bundle_path.display());
    if let Some(f) = facts {
        if let Some(id) = &f.identity {
            eprintln!("  ✓ certificate for {id} (issuer {})", f.issuer.as_deref().unwrap_or(""));
        }
        if f.tlog_verified {
            eprintln!("  ✓ recorded in the transparency log; inclusion proof and checkpoint verified");
        }
        for t in &f.timestamps {
            eprintln!("  ✓ signed timestamp {t}");
        }
    }
    let mut out = serde_json::json!({
        "file": file.display().to_string(),
        "digest": digest,
        "bundle": bundle_path.display().to_string(),
        "tlogVerified": facts.is_some_and(|f| f.tlog_verified),
        "timestamps": facts.map(|f| f.timestamps.clone()).unwrap_or_default(),
    });
    if let Some(f) = facts {
        if let (Some(id), Some(iss)) = (&f.identity, &f.issuer) {
            out["identity"] = id.clone().into();
            out["issuer"] = iss.clone().into();
        }
    }
    if let Some(t) = predicate_type {
        out["predicateType"] = t.into();
    }
    outln!("{out}");
}

fn stream_sha256(path: &Path) -> Result<Digest, Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(ExitCode::Error, format!("cannot read artifact {}: {e}", path.display()), "check the path")
    };
    let mut f = std::fs::File::open(path).map_err(fail)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Digest::parse(&format!("sha256:{}", hex::encode(h.finalize())))
        .map_err(|e| Failure::new(ExitCode::Error, e.to_string(), "report this bug"))
}

/// `sigil trusted-root show`.
pub fn show_trusted_root(args: TrustArgs) -> Result<ExitCode, Failure> {
    let in_use = load_trust(&args)?;
    let mut out = in_use.trust.summary();
    if let Some(o) = out.as_object_mut() {
        o.insert("trustRoot".into(), in_use.origin.to_json());
    }
    outln!("{out}");
    Ok(ExitCode::Ok)
}
