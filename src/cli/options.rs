//! Option groups shared by several commands, declared once and flattened into each (cosign's
//! `options` package): a key, the signature repository, the blob size limit and the registry
//! flags have the same name, short form, default and environment variable wherever they
//! appear. The test at the bottom walks the whole command tree to keep it so.

use std::path::PathBuf;

use clap::Args;

/// The default of `--max-blob-size`: cosign's largest attachment (128 MiB).
pub(crate) const DEFAULT_MAX_BLOB_SIZE: u64 = 128 << 20;
/// The largest `--max-blob-size` accepted.
const MAX_BLOB_SIZE: u64 = 4 << 30;

/// A private key to sign with (`sign`, `attest`, `sign-blob`, `attest-blob`).
#[derive(Args, Debug, Clone)]
pub(crate) struct SigningKeyArgs {
    /// Private key: a file path or env://VAR. Without it, keyless signing (see --identity-token).
    #[arg(long, short = 'k')]
    pub(crate) key: Option<String>,
}

/// A public key to verify with (`verify`, `verify-attestation`, `inspect`, `verify-blob`).
#[derive(Args, Debug, Clone)]
pub(crate) struct VerifyingKeyArgs {
    /// Public key: a file path or env://VAR (or the keyless identity flags instead).
    #[arg(long, short = 'k')]
    pub(crate) key: Option<String>,
}

/// Where signatures and attestations are stored, when not next to the image.
#[derive(Args, Debug, Clone)]
pub(crate) struct SignatureRepositoryArgs {
    /// Signatures and attestations are in this repository instead of the image's
    /// ([REGISTRY/]REPO or oci:PATH).
    #[arg(long, env = "SIGIL_REPOSITORY")]
    signature_repository: Option<String>,
}

impl SignatureRepositoryArgs {
    /// The repository given, if any.
    pub(crate) fn get(&self) -> Option<&str> {
        self.signature_repository.as_deref()
    }
}

/// The largest blob a command reads from a store.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct BlobLimitArgs {
    /// Largest blob read (signature payload, attestation envelope, bundle, SBOM), in bytes.
    /// Each kind also keeps to its format's own maximum: 1 MiB for a simple-signing payload
    /// (verify), 16 MiB for an attestation envelope (verify-attestation).
    #[arg(
        long,
        alias = "max-size",
        default_value_t = DEFAULT_MAX_BLOB_SIZE,
        value_parser = clap::value_parser!(u64).range(1..=MAX_BLOB_SIZE)
    )]
    max_blob_size: u64,
}

impl BlobLimitArgs {
    /// The limit as given.
    pub(crate) fn bytes(self) -> u64 {
        self.max_blob_size
    }

    /// The limit, but no more than a format's own maximum: what is read is never more than
    /// what its parser would accept.
    pub(crate) fn within(self, format_max: usize) -> u64 {
        self.max_blob_size.min(format_max as u64)
    }
}

/// How registries are reached: the transport. Also taken by `webhook`, whose credentials come
/// from the Docker config only.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RegistryTransportArgs {
    /// Allow plain-HTTP registries (insecure: traffic and credentials are not protected).
    #[arg(long)]
    pub(crate) allow_http_registry: bool,
    /// Extra CA certificate (PEM) to trust for registry TLS, besides the system roots.
    #[arg(long)]
    pub(crate) registry_cacert: Option<PathBuf>,
}

/// Options for reaching registries, taken by every command that reads or writes one.
#[derive(Args, Debug, Clone)]
pub(crate) struct RegistryArgs {
    #[command(flatten)]
    pub(crate) transport: RegistryTransportArgs,
    /// Registry user name, for the registry of the first image (overrides the Docker config).
    #[arg(long, requires = "registry_password")]
    pub(crate) registry_username: Option<String>,
    /// Registry password (prefer the SIGIL_REGISTRY_PASSWORD environment variable).
    #[arg(long, env = "SIGIL_REGISTRY_PASSWORD", hide_env_values = true, requires = "registry_username")]
    pub(crate) registry_password: Option<String>,
    /// Deadline for each registry request, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) timeout: u64,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::super::Cli;

    /// Every command, with its path (`download attestation`).
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(prefix: &str, c: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            for sub in c.get_subcommands() {
                let path = format!("{prefix} {}", sub.get_name()).trim().to_owned();
                out.push((path.clone(), sub.clone()));
                walk(&path, sub, out);
            }
        }
        let mut out = Vec::new();
        walk("", &Cli::command(), &mut out);
        out
    }

    /// What must not differ between two commands taking the same flag.
    fn shape(a: &clap::Arg) -> String {
        format!(
            "long={:?} short={:?} default={:?} env={:?} aliases={:?} required={}",
            a.get_long(),
            a.get_short(),
            a.get_default_values(),
            a.get_env(),
            a.get_all_aliases(),
            a.is_required_set()
        )
    }

    // see: issue 12
    #[test]
    fn shared_flags_have_one_name_short_default_and_env_everywhere() {
        // Flags whose help must be the same word for word too (the key's help names the kind
        // of key, private or public).
        const SAME_HELP: [&str; 6] = [
            "signature-repository",
            "max-blob-size",
            "allow-http-registry",
            "registry-cacert",
            "registry-username",
            "registry-password",
        ];
        let mut seen: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
        for (path, cmd) in commands() {
            for a in cmd.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                let tracked = SAME_HELP.contains(&long) || long == "key" || long == "timeout";
                if !tracked {
                    continue;
                }
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                seen.entry(long.to_owned()).or_default().push((path.clone(), shape(a), help));
            }
        }
        for (long, uses) in &seen {
            let (first_path, first_shape, first_help) = &uses[0];
            for (path, shape, help) in uses {
                if long == "key" {
                    // `import-key-pair` and `public-key` require their key; the rest take it
                    // optionally. The form is the same: --key, -k, no default, no env.
                    let optional = shape.replace("required=true", "required=false");
                    let first = first_shape.replace("required=true", "required=false");
                    assert_eq!(optional, first, "--key of `{path}` differs from `{first_path}`'s");
                    assert!(
                        help.starts_with("Private key") || help.starts_with("Public key"),
                        "--key of `{path}` does not say which key it is: {help:?}"
                    );
                    continue;
                }
                assert_eq!(shape, first_shape, "--{long} of `{path}` differs from `{first_path}`'s");
                if SAME_HELP.contains(&long.as_str()) {
                    assert_eq!(help, first_help, "--{long} help of `{path}` differs from `{first_path}`'s");
                }
            }
        }
        for must in ["key", "signature-repository", "max-blob-size", "registry-username", "timeout"] {
            assert!(seen.get(must).is_some_and(|u| u.len() >= 2), "--{must} is no longer shared: {seen:?}");
        }
    }

    // see: issue 12
    #[test]
    fn registry_flags_come_as_a_group() {
        // A command that takes one registry flag takes its whole group: the transport pair
        // everywhere, the credentials and --timeout everywhere but the webhook (Docker config
        // credentials only; its own --registry-timeout within the review deadline).
        let groups: [&[&str]; 2] =
            [&["allow-http-registry", "registry-cacert"], &["registry-username", "registry-password", "timeout"]];
        for (path, cmd) in commands() {
            let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
            for group in groups {
                let has: Vec<bool> = group.iter().map(|g| longs.contains(g)).collect();
                if path == "trusted-root update" && has == [false, false, true] {
                    continue; // --timeout: the TUF refresh's deadline, not a registry's.
                }
                assert!(has.iter().all(|h| *h) || has.iter().all(|h| !*h), "`{path}` takes part of {group:?}");
            }
            let reads_images = longs.contains(&"signature-repository") || longs.contains(&"max-blob-size");
            if reads_images {
                assert!(longs.contains(&"registry-username"), "`{path}` reads a store but lacks the registry flags");
            }
        }
    }
}
