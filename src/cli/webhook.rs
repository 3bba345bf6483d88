//! `sigil webhook`: the Kubernetes admission webhook's flags, and serving until SIGTERM or
//! SIGINT. The server is `sigil::gate::webhook`; this file only turns flags into its
//! configuration and the policy loader (the policy file's bytes → a [`PolicyJudge`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use sigil::gate::cache::CacheConfig;
use sigil::gate::tls::CertFiles;
use sigil::gate::webhook::{Config, Loader, Webhook, WebhookError};
use sigil::gate::{Limits, PolicyFiles, PolicyJudge, RegistryStores};
use sigil::trust::Trust;

use super::exit::{ExitCode, Failure};
use super::trust::load_trust;
use super::RegistryArgs;

/// `sigil webhook` flags.
#[derive(Args, Debug)]
pub(crate) struct WebhookArgs {
    /// The image policy (YAML or JSON); re-read when its contents change.
    #[arg(long)]
    policy: PathBuf,
    /// The serving certificate chain (PEM, leaf first); re-read when it or the key changes.
    #[arg(long)]
    tls_cert: PathBuf,
    /// The serving certificate's private key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Answer every review within this many seconds, denying what is not decided by then
    /// (keep it below the webhook configuration's timeoutSeconds, 10 by default).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=29))]
    deadline: u64,
    /// Seconds a TLS handshake, request headers or a review body may take to arrive.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    read_timeout: u64,
    /// Seconds between checks of the policy and certificate files for changes.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    reload_interval: u64,
    /// Seconds given to reviews in flight after SIGTERM or SIGINT.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=3600))]
    grace: u64,
    /// Most verdicts kept (one per repository, digest and policy).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    cache_size: u64,
    /// Seconds a verdict that admits is kept (checks that could not be made are never kept).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    cache_ttl: u64,
    /// Seconds a verdict that refuses is kept (at most --cache-ttl), so an image signed after
    /// a refused deployment is admitted on the retry.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    denied_ttl: u64,
    /// Seconds a tag's digest is kept before the registry is asked again.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    digest_ttl: u64,
    #[command(flatten)]
    transport: super::options::RegistryTransportArgs,
    /// Deadline for each registry request, in seconds (a review is bounded by --deadline).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    registry_timeout: u64,
    /// Signed verification summaries of the decisions (--vsa-key or --vsa-keyless), and the
    /// trusted root (--trusted-root, …) for rules that name none.
    #[command(flatten)]
    vsa: super::VsaArgs,
}

/// Serves until SIGTERM or SIGINT, then drains.
pub(crate) fn webhook(args: WebhookArgs) -> Result<ExitCode, Failure> {
    let load = policy_loader(&args)?;
    let config = Config {
        listen: args.listen,
        policy: args.policy.clone(),
        tls: CertFiles { cert: args.tls_cert.clone(), key: args.tls_key.clone() },
        deadline: Duration::from_secs(args.deadline),
        read_timeout: Duration::from_secs(args.read_timeout),
        reload_interval: Duration::from_secs(args.reload_interval),
        grace: Duration::from_secs(args.grace),
        cache: CacheConfig {
            verdicts: args.cache_size,
            verdict_ttl: Duration::from_secs(args.cache_ttl),
            denied_ttl: Duration::from_secs(args.denied_ttl),
            digests: args.cache_size,
            digest_ttl: Duration::from_secs(args.digest_ttl),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        Failure::new(ExitCode::Error, format!("cannot start the async runtime: {e}"), "check system resources")
    })?;
    let summaries = summary_writer(&args)?;
    runtime.block_on(async {
        let mut server = Webhook::bind(config, load).await.map_err(start_failure)?;
        if let Some(w) = summaries {
            eprintln!("sigil webhook: each decision is signed as a verification summary and attached to its image (not for dry runs)");
            server = server.on_decision(w);
        }
        let addr = server.local_addr().map_err(|e| {
            Failure::new(ExitCode::Error, format!("cannot read the listening address: {e}"), "report this bug")
        })?;
        eprintln!("sigil webhook: serving https://{addr} (/validate, /mutate, /healthz, /readyz, /metrics)");
        server.run(stop_signal()).await;
        eprintln!("sigil webhook: stopped");
        Ok(ExitCode::Ok)
    })
}

/// The registry flags as `RegistryArgs`: credentials come from the Docker config only (a
/// mounted dockerconfigjson Secret).
fn registry_args(args: &WebhookArgs) -> RegistryArgs {
    RegistryArgs {
        transport: args.transport.clone(),
        registry_username: None,
        registry_password: None,
        timeout: args.registry_timeout,
    }
}

/// The policy loader: the file's bytes parsed (files it names read relative to its folder),
/// judged over registries with the Docker config's credentials.
fn policy_loader(args: &WebhookArgs) -> Result<Arc<Loader<PolicyJudge<RegistryStores>>>, Failure> {
    let base = args.policy.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    // Credentials come from the Docker config only (a mounted dockerconfigjson Secret).
    let opts = super::image::registry_options(&registry_args(args))?;
    // Rules that name no trusted root use this one; without it, a policy with such rules is
    // refused at load (the server does not start, or keeps the previous policy).
    let trust: Option<Arc<Trust>> = match load_trust(args.vsa.signing.trust()) {
        Ok(t) => Some(Arc::new(t.trust)),
        Err(f) => {
            eprintln!("warning: no default trusted root: {f}");
            None
        }
    };
    Ok(Arc::new(move |bytes: &[u8]| {
        let policy =
            sigil::policy::file::parse(bytes, Arc::new(PolicyFiles::new(base.clone()))).map_err(|e| e.to_string())?;
        if policy.needs_default_trust() && trust.is_none() {
            return Err("rules without a trusted root of their own need the default one, which could not be loaded (see the warning above): pass --trusted-root".into());
        }
        let stores = RegistryStores::new(&opts).map_err(|e| format!("cannot set up registry connections: {e}"))?;
        Ok(PolicyJudge::new(policy, trust.clone(), stores, Limits::default()))
    }))
}

/// A summary to write: the image, the decision, the policy's digest.
type Job = (sigil::reference::RegistryRef, sigil::gate::Decision, sigil::digest::Digest);

/// Most summaries waiting to be written; past it, new ones are dropped (and said so).
const SUMMARY_QUEUE: usize = 1024;

/// Writes verification summaries one at a time on a thread of its own (signing and attaching
/// never hold up an answer), once per repository, digest and policy while remembered.
struct SummaryWriter {
    queue: std::sync::mpsc::SyncSender<Job>,
    written: moka::sync::Cache<(String, sigil::digest::Digest, sigil::digest::Digest), ()>,
}

impl sigil::gate::OnDecision for SummaryWriter {
    fn decided(
        &self,
        image: &sigil::reference::RegistryRef,
        decision: &sigil::gate::Decision,
        policy: &sigil::digest::Digest,
    ) {
        use sigil::gate::Outcome;
        let Some(digest) = decision.digest() else { return };
        if matches!(decision.outcome(), Outcome::CouldNotCheck { .. }) {
            return;
        }
        let key = (image.name(), digest.clone(), policy.clone());
        if self.written.contains_key(&key) {
            return;
        }
        self.written.insert(key, ());
        if self.queue.try_send((image.clone(), decision.clone(), policy.clone())).is_err() {
            eprintln!(
                "sigil webhook: verification summary for {}@{digest} dropped: {SUMMARY_QUEUE} are waiting",
                image.name()
            );
        }
    }
}

/// The summary writer the flags ask for, with its thread started.
fn summary_writer(args: &WebhookArgs) -> Result<Option<Arc<dyn sigil::gate::OnDecision>>, Failure> {
    use sigil::gate::summary::{self, Issuer, PolicyRef};
    let vsa = &args.vsa;
    if vsa.vsa_key.is_none() && !vsa.vsa_keyless {
        return Ok(None);
    }
    let (verifier, policy_path) = super::gate::summary_signer(&args.policy, &vsa.vsa_verifier_id)?;
    // The signer is made on the writer's thread, with its own runtime; what goes wrong there
    // before serving is reported here.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), Failure>>();
    let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(SUMMARY_QUEUE);
    let (signing, key, format) = (vsa.signing.clone(), vsa.vsa_key.clone(), vsa.vsa_format);
    let registry = registry_args(args);
    std::thread::spawn(move || {
        let started = (|| {
            let rt = super::files::runtime()?;
            let now = super::files::now_unix();
            let ready =
                super::sigstore::prepare(&signing, key.as_deref(), super::sigstore::logs_for(format), &rt, now)?;
            let conn = super::image::Connector::new(&registry)?;
            Ok::<_, Failure>((rt, ready, conn))
        })();
        let (rt, ready, mut conn) = match started {
            Ok(s) => {
                let _ = ready_tx.send(Ok(()));
                s
            }
            Err(f) => {
                let _ = ready_tx.send(Err(f));
                return;
            }
        };
        let locks = sigil::sign::TagLocks::default();
        let witnesses = ready.witnesses();
        while let Ok((image, decision, digest)) = jobs.recv() {
            let now = super::files::now_unix();
            let issuer = match PolicyRef::file(&policy_path, digest) {
                Ok(policy) => Issuer { verifier: verifier.clone(), policy },
                Err(e) => {
                    eprintln!("sigil webhook: verification summary for {image} not written: {e}");
                    continue;
                }
            };
            let store = match conn.store_for(&image) {
                Ok(s) => s,
                Err(f) => {
                    eprintln!("sigil webhook: verification summary for {image} not written: {}", f.message);
                    continue;
                }
            };
            let r = rt.block_on(summary::attach(
                &store,
                &store,
                &decision,
                &issuer,
                now,
                &ready.signer,
                &witnesses,
                format,
                now,
                &locks,
            ));
            match r {
                Ok(signed) => {
                    for s in signed {
                        eprintln!(
                            "sigil webhook: verification summary for {}@{} -> {}",
                            image.name(),
                            s.digest,
                            s.signature_tag
                        )
                    }
                }
                Err(e) => eprintln!("sigil webhook: verification summary for {image} not written: {e}"),
            }
        }
    });
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(f)) => return Err(f),
        Err(_) => return Err(Failure::new(ExitCode::Error, "the summary writer did not start", "report this bug")),
    }
    let written = moka::sync::Cache::builder()
        .max_capacity(args.cache_size)
        .time_to_live(Duration::from_secs(args.cache_ttl))
        .build();
    Ok(Some(Arc::new(SummaryWriter { queue, written })))
}

fn start_failure(e: WebhookError) -> Failure {
    let hint = match &e {
        WebhookError::PolicyRead { .. } => "check the --policy path",
        WebhookError::Policy { .. } => "fix what the message names (line and field) and start again",
        WebhookError::Tls(_) => "check --tls-cert and --tls-key: a PEM chain (leaf first) and its own private key",
        WebhookError::Listen { .. } => "choose another --listen address, or stop what holds the port",
        _ => "report this bug",
    };
    Failure::new(ExitCode::Error, e.to_string(), hint)
}

/// Completes on SIGTERM (what the kubelet sends) or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            eprintln!("warning: cannot watch SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
