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
use super::{RegistryArgs, TrustArgs};

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
    /// Allow plain-HTTP registries (insecure: traffic and credentials are not protected).
    #[arg(long)]
    allow_http_registry: bool,
    /// Extra CA certificate (PEM) to trust for registry TLS, besides the system roots.
    #[arg(long)]
    registry_cacert: Option<PathBuf>,
    /// Deadline for each registry request, in seconds (a review is bounded by --deadline).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    registry_timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
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
    runtime.block_on(async {
        let server = Webhook::bind(config, load).await.map_err(start_failure)?;
        let addr = server.local_addr().map_err(|e| {
            Failure::new(ExitCode::Error, format!("cannot read the listening address: {e}"), "report this bug")
        })?;
        eprintln!("sigil webhook: serving https://{addr} (/validate, /mutate, /healthz, /readyz, /metrics)");
        server.run(stop_signal()).await;
        eprintln!("sigil webhook: stopped");
        Ok(ExitCode::Ok)
    })
}

/// The policy loader: the file's bytes parsed (files it names read relative to its folder),
/// judged over registries with the Docker config's credentials.
fn policy_loader(args: &WebhookArgs) -> Result<Arc<Loader<PolicyJudge<RegistryStores>>>, Failure> {
    let base = args.policy.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    // Credentials come from the Docker config only (a mounted dockerconfigjson Secret).
    let opts = super::image::registry_options(&RegistryArgs {
        allow_http_registry: args.allow_http_registry,
        registry_cacert: args.registry_cacert.clone(),
        registry_username: None,
        registry_password: None,
        timeout: args.registry_timeout,
    })?;
    // Rules that name no trusted root use this one; without it, a policy with such rules is
    // refused at load (the server does not start, or keeps the previous policy).
    let trust: Option<Arc<Trust>> = match load_trust(&args.trust) {
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
