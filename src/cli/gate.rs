//! `policy check` and `gate`: load a policy (a policy that does not check is never used),
//! judge images named on the command line or found in Kubernetes manifests, print one verdict
//! per image (JSON lines on stdout, people's lines on stderr), and with `--pin` write the
//! manifests back with each image pinned to the digest that was judged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::json;

use sigil::gate::{self, Admission, Decision, Limits, Outcome, PolicyFiles, PolicyJudge, RegistryStores};
use sigil::policy::{self, AuthoritySigner, ImagePolicy};
use sigil::reference::RegistryRef;

use super::exit::{ExitCode, Failure};
use super::files::{read_bounded, runtime};
use super::stdout::outln;
use super::{GateArgs, Output, PolicyCheckArgs};

/// Reads and checks the policy at `path` (files it names are relative to its folder).
pub(super) fn load_policy(path: &Path) -> Result<ImagePolicy, Failure> {
    let bytes = read_bounded(path, policy::file::MAX_POLICY_BYTES as u64, "policy")?;
    parse_policy(&bytes, path)
}

/// Checks policy bytes read from `path`.
pub(super) fn parse_policy(bytes: &[u8], path: &Path) -> Result<ImagePolicy, Failure> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    policy::parse(bytes, Arc::new(PolicyFiles::new(base))).map_err(|e| {
        Failure::new(
            ExitCode::Error,
            format!("policy {}: {e}", path.display()),
            "fix the policy (docs/policy.md describes every field); a policy that does not check is never used",
        )
    })
}

/// `sigil policy check`.
pub fn check(args: PolicyCheckArgs) -> Result<ExitCode, Failure> {
    let p = load_policy(&args.policy)?;
    let rules: Vec<serde_json::Value> = p
        .rules
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "images": r.images.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
                "mode": r.mode,
                "threshold": r.threshold,
                "authorities": r.authorities.iter().map(|a| json!({
                    "name": a.name,
                    "kind": match &a.signer { AuthoritySigner::Key { .. } => "key", AuthoritySigner::Keyless { .. } => "keyless" },
                })).collect::<Vec<_>>(),
                "attestations": r.attestations.iter().map(|a| a.predicate_type.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let default = match p.default {
        policy::DefaultAction::Deny => "deny",
        policy::DefaultAction::Allow => "allow",
    };
    eprintln!(
        "policy {} is valid: {} rule(s), images no rule matches: {default}, {}",
        args.policy.display(),
        p.rules.len(),
        p.digest
    );
    for (i, r) in p.rules.iter().enumerate() {
        if let Some(earlier) = p.rules[..i]
            .iter()
            .find(|e| r.images.iter().all(|pat| e.images.iter().any(|q| q.as_str() == "**" || q == pat)))
        {
            eprintln!(
                "warning: rule {:?} never applies: rule {:?} comes first and matches all its images",
                r.name, earlier.name
            );
        }
    }
    match args.output {
        Output::Json => outln!("{}", json!({"valid": true, "digest": p.digest, "default": default, "rules": rules})),
        Output::Text => outln!("{} valid", args.policy.display()),
    }
    Ok(ExitCode::Ok)
}

/// Where an image was found.
#[derive(Clone)]
pub(super) struct Found {
    /// As written.
    pub(super) image: String,
    /// For images from manifests: which file, document and container.
    pub(super) source: Option<serde_json::Value>,
}

/// The verdict of one image as printed (JSON).
pub(super) fn verdict_json(found: &Found, d: &Decision) -> serde_json::Value {
    let (admission, message) = match d.admission() {
        Admission::Allow => ("allow", None),
        Admission::Warn(m) => ("warn", Some(m)),
        Admission::Deny(m) => ("deny", Some(m)),
    };
    let mut v = json!({
        "image": found.image,
        "digest": d.digest(),
        "rule": d.rule(),
        "mode": d.mode(),
        "admission": admission,
        "outcome": d.outcome(),
        "authorities": d.authorities(),
        "attestations": d.attestations(),
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(m) = message {
            o.insert("message".into(), m.into());
        }
        if let Some(s) = &found.source {
            o.insert("source".into(), s.clone());
        }
    }
    v
}

/// The exit code for one decision: admitted is 0, an enforced "no" 12, an enforced
/// could-not-check 14.
fn code_of(d: &Decision) -> ExitCode {
    match (d.admission(), d.outcome()) {
        (Admission::Allow | Admission::Warn(_), _) => ExitCode::Ok,
        (Admission::Deny(_), Outcome::CouldNotCheck { .. }) => ExitCode::CouldNotCheck,
        (Admission::Deny(_), _) => ExitCode::NoMatchingSignature,
    }
}

fn tell(found: &Found, d: &Decision) {
    let rule = d.rule().map(|r| format!("rule {r:?}")).unwrap_or_else(|| "no rule (the policy's default)".into());
    let digest = d.digest().map(|d| d.to_string()).unwrap_or_else(|| "digest not resolved".into());
    match d.admission() {
        Admission::Allow => eprintln!("  ✓ {} ({digest}): allowed by {rule}", found.image),
        Admission::Warn(m) => {
            eprintln!("  ! {} ({digest}): admitted with a warning ({} mode): {m}", found.image, d.mode())
        }
        Admission::Deny(m) => eprintln!("  ✗ {} ({digest}): DENIED: {m}", found.image),
    }
}

/// `sigil gate`.
pub fn gate(args: GateArgs) -> Result<ExitCode, Failure> {
    if args.registry.registry_username.is_some() {
        return Err(Failure::new(
            ExitCode::Usage,
            "gate reads registries with the Docker config's credentials only",
            "log in with `docker login` (or set DOCKER_CONFIG) instead of --registry-username",
        ));
    }
    let policy = load_policy(&args.policy)?;
    let mut found: Vec<Found> = args.images.iter().map(|i| Found { image: i.clone(), source: None }).collect();
    let manifests = super::manifests::read_all(&args.files)?;
    found.extend(manifests.iter().flat_map(|m| m.found()));
    if found.is_empty() {
        return Err(Failure::new(ExitCode::Usage, "no images to judge", "name images, or pass -f MANIFESTS"));
    }
    let default_trust = if policy.needs_default_trust() {
        Some(Arc::new(super::trust::load_trust(args.vsa.signing.trust())?.trust))
    } else {
        None
    };
    let stores = RegistryStores::new(&super::image::registry_options(&args.registry)?)
        .map_err(|e| super::image::store_failure(&e))?;
    let judge = PolicyJudge::new(policy, default_trust, stores, Limits::default());
    eprintln!("Gate with policy {} ({}):", args.policy.display(), sigil::gate::Judge::policy_digest(&judge));
    let rt = runtime()?;
    let judge = &judge;
    let decisions: Vec<(Found, Decision)> = rt.block_on(join_all(found.into_iter().map(|f| async move {
        let d = match RegistryRef::parse(&f.image) {
            Ok(r) => gate::decide(judge, &r).await,
            Err(e) => gate::Decision::not_an_image(&f.image, &e.to_string()),
        };
        (f, d)
    })));
    let mut worst = ExitCode::Ok;
    for (f, d) in &decisions {
        tell(f, d);
        let code = code_of(d);
        if code.severity() > worst.severity() {
            worst = code;
        }
    }
    let summaries = if args.vsa.vsa_key.is_some() || args.vsa.vsa_keyless {
        let (summaries, code) = summarize(&args, &rt, &decisions, judge)?;
        // A summary not written makes a run that admitted everything fail (1); the verdict's
        // own code (12, 14) is never hidden by it.
        if worst == ExitCode::Ok {
            worst = code;
        }
        summaries
    } else {
        Default::default()
    };
    let pinned_to_stdout = args.pin && args.files.iter().any(|f| f.as_os_str() == "-");
    if !pinned_to_stdout {
        for (f, d) in &decisions {
            match args.output {
                Output::Json => {
                    let mut v = verdict_json(f, d);
                    if let (Some(o), Some(s)) = (
                        v.as_object_mut(),
                        d.digest().and_then(|dg| summaries.get(&(d.image().to_owned(), dg.clone()))),
                    ) {
                        o.insert("summary".into(), s.clone());
                    }
                    outln!("{v}")
                }
                Output::Text => {
                    outln!("{} {}", f.image, if code_of(d) == ExitCode::Ok { "admitted" } else { "denied" })
                }
            }
        }
    }
    if args.pin {
        if worst != ExitCode::Ok {
            eprintln!("  nothing pinned: an image was denied");
        } else {
            super::manifests::pin_all(&manifests, &decisions[args.images.len()..])?;
        }
    }
    Ok(worst)
}

/// The summaries' verifier and the policy file's absolute path (its URI), for `gate` and
/// `webhook`.
pub(super) fn summary_signer(
    policy: &Path,
    verifier_id: &str,
) -> Result<(sigil::gate::summary::Verifier, PathBuf), Failure> {
    let path = std::fs::canonicalize(policy)
        .map_err(|e| Failure::new(ExitCode::Error, format!("{}: {e}", policy.display()), "check the policy path"))?;
    let verifier = sigil::gate::summary::Verifier::sigil(verifier_id).map_err(bad_verifier)?;
    Ok((verifier, path))
}

fn bad_verifier(e: sigil::gate::summary::SummaryError) -> Failure {
    Failure::new(ExitCode::Usage, e.to_string(), "pass --vsa-verifier-id with an absolute URI")
}

/// Where each image's verification summary went, by (image as judged, digest).
type Summaries = std::collections::BTreeMap<(String, sigil::digest::Digest), serde_json::Value>;

/// Signs and attaches one verification summary per image judged (once per repository and
/// digest), for decisions that were made: passed or failed. Returns where each went, by
/// (image as judged, digest), and the exit code for the attaching (1 when one failed).
fn summarize<R: sigil::gate::Stores>(
    args: &GateArgs,
    rt: &tokio::runtime::Runtime,
    decisions: &[(Found, Decision)],
    judge: &PolicyJudge<R>,
) -> Result<(Summaries, ExitCode), Failure> {
    use sigil::gate::summary::{self, Issuer, PolicyRef};
    let now = super::files::now_unix();
    let vsa = &args.vsa;
    let ready = super::sigstore::prepare(
        &vsa.signing,
        vsa.vsa_key.as_deref(),
        super::sigstore::logs_for(vsa.vsa_format),
        rt,
        now,
    )?;
    let (verifier, policy_path) = summary_signer(&args.policy, &vsa.vsa_verifier_id)?;
    let issuer = Issuer {
        verifier,
        policy: PolicyRef::file(&policy_path, judge.policy().digest.clone()).map_err(bad_verifier)?,
    };
    let mut conn = super::image::Connector::new(&args.registry)?;
    let locks = sigil::sign::TagLocks::default();
    let witnesses = ready.witnesses();
    let mut out = std::collections::BTreeMap::new();
    let mut code = ExitCode::Ok;
    let mut seen = std::collections::BTreeSet::new();
    for (_, d) in decisions {
        // No digest, nothing to attach to; a decision that could not be checked is refused by
        // `summary::attach` (and said so below).
        let Some(digest) = d.digest() else { continue };
        let Ok(image) = RegistryRef::parse(d.image()) else { continue };
        if !seen.insert((image.name(), digest.clone())) {
            continue;
        }
        let store = conn.store_for(&image)?;
        let attached = rt.block_on(summary::attach(
            &store,
            &store,
            d,
            &issuer,
            now,
            &ready.signer,
            &witnesses,
            vsa.vsa_format,
            now,
            &locks,
        ));
        match attached {
            Ok(signed) => {
                for s in &signed {
                    eprintln!(
                        "  ✓ verification summary for {}@{} attached -> {}",
                        image.name(),
                        s.digest,
                        s.signature_tag
                    );
                    out.insert(
                        (d.image().to_owned(), digest.clone()),
                        json!({"format": s.format, "attestation": s.signature_tag, "manifest": s.signature_manifest}),
                    );
                }
            }
            Err(summary::AttachError::Summary(e)) => eprintln!("  - no verification summary for {}: {e}", d.image()),
            Err(e) => {
                eprintln!("  ✗ verification summary for {}@{digest} NOT attached: {e}", image.name());
                code = ExitCode::Error;
            }
        }
    }
    Ok((out, code))
}
