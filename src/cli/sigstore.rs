//! The signing flags shared by `sign`, `attest`, `sign-blob` and `attest-blob`: who signs (a
//! key, or keyless with an OIDC identity token), which Sigstore services witness it (from the
//! signing configuration), and the trusted root their answers are checked against.
//!
//! Identity tokens come from `--identity-token` (the token, or a file holding it),
//! `SIGSTORE_ID_TOKEN` (GitLab CI's `id_tokens`, any CI), or GitHub Actions' token service
//! (`ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`, audience `sigstore`). They are never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use rand_core::RngCore as _;
use sigil::fulcio::Fulcio;
use sigil::http::Service;
use sigil::oidc::{IdentityToken, TokenError, MAX_TOKEN_BYTES, SIGSTORE_AUDIENCE};
use sigil::rekor::{ApiVersion, Rekor};
use sigil::sign::sigstore::{Signer, SigstoreError, Witnesses};
use sigil::signing_config::{self, SigningConfig};
use sigil::trust::Trust;
use sigil::tsa::Tsa;

use super::exit::{ExitCode, Failure};
use super::files::read_bounded;
use super::trust::load_trust;
use super::TrustArgs;

/// How a signature is witnessed and by whom it is made.
#[derive(Args, Debug, Clone)]
pub(crate) struct SigningArgs {
    /// OIDC identity token for keyless signing: the token itself, or a file holding it (else
    /// SIGSTORE_ID_TOKEN, then GitHub Actions' token service). Unused with --key.
    #[arg(long, env = "SIGSTORE_ID_TOKEN", hide_env_values = true)]
    identity_token: Option<String>,
    /// Sigstore signing configuration (v0.2 JSON) naming the Fulcio, Rekor and timestamp
    /// authority to use; default: the public-good instance's.
    #[arg(long, env = "SIGIL_SIGNING_CONFIG")]
    signing_config: Option<PathBuf>,
    /// Record the signature in the transparency log (true by default, as cosign). With a key
    /// and false, nothing leaves the machine and verifiers need --insecure-ignore-tlog.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tlog_upload: bool,
    /// Deadline for each request to a Sigstore service (Fulcio, Rekor, TSA), in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    sigstore_timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

impl SigningArgs {
    /// The trust flags (they serve verification too where a command also verifies).
    pub(crate) fn trust(&self) -> &TrustArgs {
        &self.trust
    }
}

/// The signer and its witnesses, ready.
pub(crate) struct Ready {
    pub(crate) signer: Signer,
    log: Option<Rekor>,
    tsa: Option<Tsa>,
    trust: Option<Trust>,
}

impl Ready {
    /// The witnesses, borrowed.
    pub(crate) fn witnesses(&self) -> Witnesses<'_, Rekor, Tsa> {
        Witnesses { log: self.log.as_ref(), tsa: self.tsa.as_ref(), trust: self.trust.as_ref() }
    }
}

fn config_failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        ExitCode::Error,
        format!("signing configuration: {e}"),
        "pass --signing-config with a Sigstore signing_config.json (v0.2)",
    )
}

/// Loads the key or gets a keyless certificate, and picks the services: the runtime is the
/// command's.
pub(crate) fn prepare(
    args: &SigningArgs,
    key: Option<&str>,
    logs: Logs,
    rt: &tokio::runtime::Runtime,
    now_unix: i64,
) -> Result<Ready, Failure> {
    let key = key.map(super::keyfiles::load_private_key).transpose()?;
    let keyless = key.is_none();
    let key = match key {
        Some(k) if !args.tlog_upload => {
            eprintln!("warning: --tlog-upload=false: the signature is not recorded in a transparency log; verifiers need --insecure-ignore-tlog");
            return Ok(Ready { signer: Signer::key(k), log: None, tsa: None, trust: None });
        }
        other => other,
    };
    if let Some(sigil::keys::PrivateKey::Ed25519(_)) = &key {
        // Rekor records a signature over a digest; pure Ed25519 signs the message itself.
        return Err(Failure::new(
            ExitCode::Usage,
            "an Ed25519 key signs only offline for now (--tlog-upload=false): the transparency log records signatures over a digest; nothing was signed",
            "pass --tlog-upload=false, or sign with an ECDSA P-256 key or keyless",
        ));
    }
    let config = SigningConfig::parse(&signing_config_bytes(args, rt)?).map_err(config_failure)?;
    let now = jiff::Timestamp::from_second(now_unix).map_err(config_failure)?;
    let timeout = Duration::from_secs(args.sigstore_timeout);
    let service = |name| {
        Service::new(name, timeout).map_err(|e| Failure::new(ExitCode::Error, e.to_string(), "check the TLS setup"))
    };
    let mut choose = |n: usize| (rand_core::OsRng.next_u32() as usize) % n.max(1);
    let log = if args.tlog_upload {
        let picked = signing_config::select("Rekor", &config.rekor, config.rekor_selector, logs.versions(), now, &mut choose)
            .map_err(|e| match logs {
                Logs::V1Only => Failure::new(
                    ExitCode::Error,
                    format!("signing configuration: {e}"),
                    "cosign 2's legacy format records a Rekor v1 entry: use a signing configuration with a v1 log, or --format bundle",
                ),
                Logs::PreferV2 => config_failure(e),
            })?;
        let [s] = picked.as_slice() else {
            return Err(config_failure(format!(
                "the configuration asks for {} transparency logs; sigil records in one",
                picked.len()
            )));
        };
        let version = ApiVersion::from_major(s.major_api_version).ok_or_else(|| config_failure("Rekor API version"))?;
        Some((Rekor::new(service("Rekor")?, &s.url, version), version))
    } else {
        None
    };
    let tsa = if config.tsa.is_empty() {
        None
    } else {
        let picked = signing_config::select("TSA", &config.tsa, config.tsa_selector, &[1], now, &mut choose)
            .map_err(config_failure)?;
        let [s] = picked.as_slice() else {
            return Err(config_failure(format!(
                "the configuration asks for {} timestamp authorities; sigil asks one",
                picked.len()
            )));
        };
        Some(Tsa::new(service("TSA")?, &s.url))
    };
    if matches!(log, Some((_, ApiVersion::V2))) && tsa.is_none() {
        return Err(config_failure(
            "Rekor v2 records no signing time, and the configuration has no timestamp authority",
        ));
    }
    if keyless && log.is_none() {
        // A certificate valid for minutes proves something later only through the log entry
        // that shows when it was used (and that its use was made public).
        return Err(Failure::new(
            ExitCode::Usage,
            "keyless signing records the signature in the transparency log: --tlog-upload=false is for key signing; nothing was signed",
            "drop --tlog-upload=false, or sign with --key",
        ));
    }
    let trust = load_trust(&args.trust)?.trust;
    let signer = match key {
        Some(k) => Signer::key(k),
        None => {
            let token = identity_token(args, rt)?;
            token.check(now_unix, SIGSTORE_AUDIENCE).map_err(token_failure)?;
            let ca = signing_config::select_one("Fulcio", &config.ca, &[1], now).map_err(config_failure)?;
            let fulcio = Fulcio::new(service("Fulcio")?, &ca.url);
            eprintln!(
                "Keyless signing as {} (issuer {}); certificate from {}",
                token.principal(),
                token.claims().issuer,
                ca.url
            );
            rt.block_on(Signer::keyless(&fulcio, &token, now_unix)).map_err(sigstore_failure)?
        }
    };
    Ok(Ready { signer, log: log.map(|(l, _)| l), tsa, trust: Some(trust) })
}

/// Which Rekor API versions a command can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logs {
    /// v2 preferred, v1 accepted (bundles carry either).
    PreferV2,
    /// v1 only: cosign 2's legacy annotations carry a Rekor v1 entry with its SET.
    V1Only,
}

impl Logs {
    fn versions(self) -> &'static [u32] {
        match self {
            Logs::PreferV2 => &[2, 1],
            Logs::V1Only => &[1],
        }
    }
}

/// The logs a command can use: cosign 2's legacy annotations record a Rekor v1 entry with its
/// SET; bundles carry either version.
pub(crate) fn logs_for(format: sigil::attachments::Format) -> Logs {
    match format {
        sigil::attachments::Format::Legacy => Logs::V1Only,
        sigil::attachments::Format::Bundle => Logs::PreferV2,
    }
}

/// The signing configuration: `--signing-config`, else the TUF repository's (cached by
/// `sigil trusted-root update`, verified offline), else, for the public-good instance only,
/// the one built in. Says which on stderr.
fn signing_config_bytes(args: &SigningArgs, rt: &tokio::runtime::Runtime) -> Result<Vec<u8>, Failure> {
    if let Some(p) = &args.signing_config {
        eprintln!("note: signing configuration from the file {}", p.display());
        return read_bounded(p, signing_config::MAX_SIGNING_CONFIG_BYTES as u64, "signing configuration");
    }
    let repo = super::trust::tuf_repository(&args.trust)?;
    let why = match sigil::tuf::cache_dir() {
        Some(cache) if repo.cache_folder(&cache).is_dir() => {
            match rt.block_on(sigil::tuf::cached_signing_config(&repo, &cache)) {
                Ok((bytes, file)) => {
                    eprintln!("note: signing configuration from the TUF cache {} ({})", file.display(), repo.url());
                    return Ok(bytes);
                }
                Err(e) => format!("the TUF cache has no usable signing configuration ({e})"),
            }
        }
        _ => "no TUF cache".to_owned(),
    };
    match repo {
        sigil::tuf::Repository::PublicGood => {
            eprintln!("note: signing configuration of the public-good instance built into sigil ({why})");
            Ok(signing_config::PUBLIC_GOOD.to_vec())
        }
        sigil::tuf::Repository::Custom { .. } => Err(Failure::new(
            ExitCode::Error,
            format!("no signing configuration for the TUF repository {}: {why}", repo.url()),
            "run `sigil trusted-root update` with the same --tuf-url and --tuf-root, or pass --signing-config",
        )),
    }
}

/// The identity token: the flag (or `SIGSTORE_ID_TOKEN`, which clap reads into it), a file
/// the flag names, else GitHub Actions' token service.
fn identity_token(args: &SigningArgs, rt: &tokio::runtime::Runtime) -> Result<IdentityToken, Failure> {
    let text: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(match &args.identity_token {
        Some(v) if Path::new(v).is_file() => {
            String::from_utf8(read_bounded(Path::new(v), MAX_TOKEN_BYTES as u64, "identity token file")?)
                .map_err(|_| token_failure(TokenError::Malformed("the file is not UTF-8".into())))?
        }
        Some(v) => v.clone(),
        None => match (std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"), std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) {
            (Ok(url), Ok(bearer)) => {
                let svc = Service::new("GitHub Actions' token service", Duration::from_secs(args.sigstore_timeout))
                    .map_err(|e| Failure::new(ExitCode::Error, e.to_string(), "check the TLS setup"))?;
                rt.block_on(sigil::oidc::github_actions_token(&svc, &url, &bearer)).map_err(|e| {
                    Failure::new(ExitCode::Error, e, "the job needs `permissions: id-token: write`")
                })?
            }
            _ => {
                return Err(Failure::new(
                    ExitCode::Usage,
                    "keyless signing needs an OIDC identity token, and none was found",
                    "pass --identity-token TOKEN|FILE or set SIGSTORE_ID_TOKEN (GitLab CI: `id_tokens:` with `aud: sigstore`); in GitHub Actions grant `permissions: id-token: write`; or sign with --key",
                ))
            }
        },
    });
    IdentityToken::parse(&text).map_err(token_failure)
}

fn token_failure(e: TokenError) -> Failure {
    let hint = match e {
        TokenError::Expired { .. } | TokenError::NotYetValid(_) => {
            "get a fresh identity token (they live minutes) and sign at once"
        }
        TokenError::WrongAudience { .. } => "request the identity token for the audience `sigstore`",
        TokenError::Malformed(_) => "pass the OIDC identity token (a JWT) itself, or a file holding only it",
    };
    Failure::new(ExitCode::Error, format!("{e}; nothing was signed"), hint)
}

/// A signing failure: what failed and what to do.
pub(crate) fn sigstore_failure(e: SigstoreError) -> Failure {
    let hint = match &e {
        SigstoreError::Token(_) => "get a fresh identity token for the audience `sigstore`",
        SigstoreError::Fulcio(_) => "check the identity token and the Fulcio URL in the signing configuration",
        SigstoreError::Certificate(_) | SigstoreError::Unverified(_) | SigstoreError::NoTrust => {
            "check that --trusted-root belongs to the services of --signing-config"
        }
        SigstoreError::Rekor(_) => "check the Rekor URL in the signing configuration, or retry",
        SigstoreError::Tsa(_) => "check the timestamp authority URL in the signing configuration, or retry",
        SigstoreError::Key(_) | SigstoreError::Digest(_) => "check the key",
        SigstoreError::NoWitness => {
            "keep --tlog-upload=true, or use a signing configuration with a timestamp authority"
        }
    };
    Failure::new(ExitCode::Error, e.to_string(), hint)
}
