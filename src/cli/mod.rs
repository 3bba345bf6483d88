//! The command-line shell: argument parsing, output and exit codes. No domain logic here.
// stdout is written through `stdout` only (a closed pipe is quiet there, a panic in println!).
#![deny(clippy::print_stdout)]

mod artifacts;
mod blob;
mod copy;
mod exit;
mod files;
mod gate;
mod image;
mod keyfiles;
mod manifests;
mod options;
mod sigstore;
mod stdout;
mod tooling;
mod trust;
mod webhook;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use exit::{ExitCode, Failure};
pub(crate) use options::{BlobLimitArgs, RegistryArgs, SignatureRepositoryArgs, SigningKeyArgs, VerifyingKeyArgs};

use sigil::keys::KeyAlgorithm;

/// sigil: sign and verify container images, compatible with cosign.
#[derive(Parser, Debug)]
#[command(name = "sigil", version = tooling::VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate an encrypted key pair (P.key, P.pub) in cosign's format.
    GenerateKeyPair(GenerateArgs),
    /// Encrypt an existing unencrypted private key (PKCS#8 or SEC1 PEM) into cosign's format.
    ImportKeyPair(ImportArgs),
    /// Print the public key of a private key.
    PublicKey(PublicKeyArgs),
    /// Sign images: attach a cosign-compatible signature to each image digest.
    Sign(SignArgs),
    /// Verify the signatures attached to images.
    Verify(VerifyArgs),
    /// List what is attached to an image (signatures, attestations, SBOMs).
    Tree(TreeArgs),
    /// Attest images: an in-toto statement with a predicate, signed (DSSE) and attached.
    Attest(AttestArgs),
    /// Verify the attestations attached to images; prints the verified statements.
    VerifyAttestation(VerifyAttestationArgs),
    /// Report everything verified about an image: signatures (who, when) and attestations
    /// (SLSA provenance, SBOMs, vulnerability reports), summarised.
    Inspect(InspectArgs),
    /// Attach an SBOM to an image as an OCI 1.1 artifact (unsigned; attest it to sign it).
    #[command(subcommand)]
    Attach(AttachCommand),
    /// Print what is attached to an image (unverified).
    #[command(subcommand)]
    Download(DownloadCommand),
    /// Sign a file: write a Sigstore bundle (v0.3) for it, keyless or with a key.
    SignBlob(SignBlobArgs),
    /// Attest a file: an in-toto statement about it, signed (DSSE) into a Sigstore bundle.
    AttestBlob(AttestBlobArgs),
    /// Verify a Sigstore bundle for a file or a sha256:DIGEST (keyless or key-based).
    VerifyBlob(VerifyBlobArgs),
    /// Show the Sigstore trust material in use.
    #[command(subcommand)]
    TrustedRoot(TrustedRootCommand),
    /// Image policies for the deploy gate (docs/policy.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Judge images against a policy: named here, or every container image of Kubernetes
    /// manifests (-f). One verdict per image: JSON lines on stdout, people's lines on stderr.
    /// Exit 0 when every image is admitted, 12 when an enforced rule denies, 14 when an
    /// enforced rule could not be checked.
    Gate(GateArgs),
    /// Serve the Kubernetes admission webhook (HTTPS): /validate denies workloads whose images
    /// the policy refuses, /mutate also pins admitted images to their digests.
    Webhook(webhook::WebhookArgs),
    /// Copy an image with everything attached to it (signatures, attestations, SBOMs, OCI
    /// referrers) between registries and OCI layouts (oci:PATH, the air-gap format).
    Copy(copy::CopyArgs),
    /// Print a shell completion script, generated from sigil's own flags.
    Completion(tooling::CompletionArgs),
    /// Print sigil's man page (roff), or write one page per command with --dir.
    Man(tooling::ManArgs),
    /// Print the version and the git commit sigil was built from.
    Version(tooling::VersionArgs),
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Check a policy file: every field, keys and trusted roots it names; errors name the
    /// line and field. Exit 0 when valid, 1 when not.
    Check(PolicyCheckArgs),
}

#[derive(Args, Debug)]
struct PolicyCheckArgs {
    /// Output format (json: the rules as read).
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
    /// The policy file (YAML or JSON).
    policy: PathBuf,
}

#[derive(Args, Debug)]
struct GateArgs {
    /// The policy file (YAML or JSON; checked as `policy check` does before any image is judged).
    #[arg(long)]
    policy: PathBuf,
    /// Kubernetes manifests (YAML or JSON, multi-document, `kind: List`; `-` for stdin): every
    /// container, init container and ephemeral container image (and image volume) of Pods,
    /// Deployments, ReplicaSets, StatefulSets, DaemonSets, ReplicationControllers, Jobs and
    /// CronJobs is judged.
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// When every image is admitted, write the manifests back with each image pinned to the
    /// digest judged (`name:tag@sha256:…`), preserving everything else; manifests from stdin
    /// are printed on stdout instead of the verdicts.
    #[arg(long)]
    pin: bool,
    #[command(flatten)]
    vsa: VsaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Output,
    /// Images to judge ([REGISTRY/]REPO[:TAG][@DIGEST]).
    images: Vec<String>,
}

/// Signed verification summaries of the gate's decisions, and the trust flags of the whole
/// command (the trusted root verifies the images and the summaries' own signing).
#[derive(Args, Debug)]
pub(crate) struct VsaArgs {
    /// Sign each decision (passed or failed; not one that could not be checked) as a SLSA
    /// Verification Summary Attestation with this private key and attach it to the image.
    #[arg(long, conflicts_with = "vsa_keyless")]
    vsa_key: Option<String>,
    /// The same, keyless (an identity token: --identity-token, SIGSTORE_ID_TOKEN or GitHub
    /// Actions').
    #[arg(long)]
    vsa_keyless: bool,
    /// Where the summaries are stored.
    #[arg(long, value_enum, default_value = "bundle")]
    vsa_format: sigil::attachments::Format,
    /// The summaries' verifier.id (a URI naming this gate).
    #[arg(long, default_value = sigil::gate::summary::DEFAULT_VERIFIER_ID)]
    vsa_verifier_id: String,
    #[command(flatten)]
    signing: sigstore::SigningArgs,
}

#[derive(Subcommand, Debug)]
enum AttachCommand {
    /// Push an SBOM file as an OCI 1.1 artifact whose subject is the image (streamed from disk).
    Sbom(AttachSbomArgs),
}

#[derive(Subcommand, Debug)]
enum DownloadCommand {
    /// Print the attestation envelopes attached to an image (JSON, one per line; unverified).
    Attestation(DownloadAttestationArgs),
    /// Print the SBOMs attached to an image (OCI referrers and cosign's `.sbom` tag; unverified).
    Sbom(DownloadSbomArgs),
}

/// SBOM formats for `attach sbom`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SbomType {
    /// SPDX JSON (application/spdx+json).
    Spdxjson,
    /// CycloneDX JSON (application/vnd.cyclonedx+json).
    Cyclonedx,
}

#[derive(Args, Debug)]
struct AttachSbomArgs {
    /// The SBOM file (JSON).
    #[arg(long)]
    sbom: PathBuf,
    /// Its format.
    #[arg(long = "type", value_enum, default_value = "spdxjson")]
    sbom_type: SbomType,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image.
    image: String,
}

#[derive(Args, Debug)]
struct DownloadAttestationArgs {
    /// Only attestations whose signed statement has this predicate type (name or URI).
    #[arg(long)]
    predicate_type: Option<String>,
    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    /// Read only this storage format: legacy (`.att` tag; prints DSSE envelopes) or bundle
    /// (OCI 1.1 referrers; prints Sigstore bundles); both by default.
    #[arg(long, value_enum)]
    format: Option<sigil::attachments::Format>,
    #[command(flatten)]
    limit: BlobLimitArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image.
    image: String,
}

#[derive(Args, Debug)]
struct DownloadSbomArgs {
    #[command(flatten)]
    limit: BlobLimitArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The image.
    image: String,
}

#[derive(Subcommand, Debug)]
enum TrustedRootCommand {
    /// Print which trusted root is in use, where it came from, and what it contains (JSON).
    Show(TrustArgs),
    /// Refresh the trusted root through TUF into the local cache (needs the network).
    Update(UpdateArgs),
}

/// Where Sigstore trust material comes from: --trusted-root, else the TUF cache (offline,
/// refreshed by `trusted-root update`), else the root embedded in the binary.
#[derive(Args, Debug, Clone)]
pub(crate) struct TrustArgs {
    /// A Sigstore trusted_root.json to use instead of the TUF cache or the embedded root.
    #[arg(long, env = "SIGIL_TRUSTED_ROOT")]
    trusted_root: Option<PathBuf>,
    /// A TUF repository other than the public-good one (needs --tuf-root).
    #[arg(long, env = "SIGIL_TUF_URL", requires = "tuf_root")]
    tuf_url: Option<String>,
    /// The pinned TUF root.json of --tuf-url.
    #[arg(long, env = "SIGIL_TUF_ROOT", requires = "tuf_url")]
    tuf_root: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    #[command(flatten)]
    trust: TrustArgs,
    /// Deadline for the whole refresh, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

#[derive(Args, Debug)]
struct SignBlobArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    #[command(flatten)]
    signing: sigstore::SigningArgs,
    /// Where to write the Sigstore bundle (JSON).
    #[arg(long)]
    bundle: PathBuf,
    /// The file to sign.
    file: PathBuf,
}

/// What `attest` and `attest-blob` sign: a predicate of a type, or a whole statement.
#[derive(Args, Debug)]
pub(crate) struct PredicateArgs {
    /// The predicate (JSON; SPDX tag-value text for --type spdx; any text for --type custom).
    #[arg(long, required_unless_present = "statement", conflicts_with = "statement")]
    predicate: Option<PathBuf>,
    // The help lists the names from sigil::predicates::KNOWN.
    #[arg(long = "type", default_value = "custom", help = format!("Predicate type: {}", sigil::predicates::names_help()))]
    predicate_type: String,
    /// A whole in-toto statement to sign instead of --predicate; its subject must name the digest
    /// attested (the image's, or the file's).
    #[arg(long, conflicts_with = "predicate_type")]
    statement: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct AttestBlobArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    #[command(flatten)]
    signing: sigstore::SigningArgs,
    #[command(flatten)]
    what: PredicateArgs,
    /// Where to write the Sigstore bundle (JSON).
    #[arg(long)]
    bundle: PathBuf,
    /// The file the statement is about.
    file: PathBuf,
}

#[derive(Args, Debug)]
struct VerifyBlobArgs {
    /// The Sigstore bundle (media types v0.1, v0.2, v0.3).
    #[arg(long)]
    bundle: PathBuf,
    #[command(flatten)]
    key: VerifyingKeyArgs,
    #[command(flatten)]
    keyless: KeylessArgs,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// The artifact: a file path, or sha256:<hex> of it.
    artifact: String,
}

/// Output format for stdout.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// JSON, one document per line (stable schema).
    Json,
    /// Human-readable text.
    Text,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "ecdsa-p256")]
    algorithm: KeyAlgorithm,
    /// Prefix of the output files (P.key and P.pub).
    #[arg(long, default_value = "sigil")]
    output_key_prefix: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// Private key to import: a file path (unencrypted PKCS#8 or SEC1 PEM).
    #[arg(long, short = 'k')]
    key: PathBuf,
    /// Prefix of the output files (P.key and P.pub).
    #[arg(long, default_value = "import-sigil")]
    output_key_prefix: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct PublicKeyArgs {
    /// Private key: a file path or env://VAR.
    #[arg(long, short = 'k')]
    key: String,
    /// Write to this file instead of stdout.
    #[arg(long)]
    outfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SignArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    #[command(flatten)]
    signing: sigstore::SigningArgs,
    /// Annotation to include in the signed payload (key=value), repeatable.
    #[arg(short = 'a', long = "annotations", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// On an image index, sign the index and every manifest it lists.
    #[arg(long)]
    recursive: bool,
    /// How to store the signature: bundle (cosign 3's default: a Sigstore bundle as an OCI 1.1
    /// referrer) or legacy (cosign 2's `sha256-<hex>.sig` tag, read by skopeo, podman, CRI-O).
    #[arg(long, value_enum, default_value = "bundle")]
    format: sigil::attachments::Format,

    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Format of stdout.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Output,
    /// Images: [REGISTRY/]REPO[:TAG][@DIGEST] or oci:PATH[:TAG|@DIGEST].
    #[arg(required = true)]
    images: Vec<String>,
}

/// Keyless signer flags, shared by `verify` and `verify-blob`.
#[derive(Args, Debug, Clone)]
pub(crate) struct KeylessArgs {
    /// Certificate identity (SAN email or URI), exact.
    #[arg(long)]
    certificate_identity: Option<String>,
    /// Certificate identity as a regular expression matched against the whole value.
    #[arg(long)]
    certificate_identity_regexp: Option<String>,
    /// OIDC issuer, exact.
    #[arg(long)]
    certificate_oidc_issuer: Option<String>,
    /// OIDC issuer as a regular expression matched against the whole value.
    #[arg(long)]
    certificate_oidc_issuer_regexp: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Whether a key signature must show when it was made (verify, verify-attestation, inspect).
#[derive(Args, Debug, Clone)]
pub(crate) struct EvidenceArgs {
    /// With --key: accept signatures without a transparency-log entry (made with
    /// --tlog-upload=false); the key alone then vouches, with no evidence of when it signed.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", requires = "key")]
    insecure_ignore_tlog: bool,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    key: VerifyingKeyArgs,
    #[command(flatten)]
    keyless: KeylessArgs,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Annotation the signed payload must carry (key=value), repeatable.
    #[arg(short = 'a', long = "annotations", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    /// Read only this storage format: legacy (`.sig`/`.att` tags) or bundle (OCI 1.1
    /// referrers); both by default, and either verifying is enough.
    #[arg(long, value_enum)]
    format: Option<sigil::attachments::Format>,

    #[command(flatten)]
    limit: BlobLimitArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Format of stdout.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    output: Output,
    /// Images: [REGISTRY/]REPO[:TAG][@DIGEST] or oci:PATH[:TAG|@DIGEST].
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
struct AttestArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    #[command(flatten)]
    signing: sigstore::SigningArgs,
    #[command(flatten)]
    what: PredicateArgs,
    /// On an image index, attest the index and every manifest it lists.
    #[arg(long)]
    recursive: bool,
    /// How to store the attestation: bundle (cosign 3's default: a Sigstore bundle as an OCI 1.1
    /// referrer) or legacy (cosign 2's `sha256-<hex>.att` tag, read by skopeo, podman, CRI-O).
    #[arg(long, value_enum, default_value = "bundle")]
    format: sigil::attachments::Format,

    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
struct VerifyAttestationArgs {
    #[command(flatten)]
    key: VerifyingKeyArgs,
    #[command(flatten)]
    keyless: KeylessArgs,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Require this predicate type (name as for attest, or a URI).
    #[arg(long = "type")]
    predicate_type: Option<String>,
    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    /// Read only this storage format: legacy (`.sig`/`.att` tags) or bundle (OCI 1.1
    /// referrers); both by default, and either verifying is enough.
    #[arg(long, value_enum)]
    format: Option<sigil::attachments::Format>,
    /// SLSA provenance: required builder id.
    #[arg(long)]
    builder_id: Option<String>,
    /// SLSA provenance: required source repository (e.g. github.com/org/repo).
    #[arg(long)]
    source_uri: Option<String>,
    /// SLSA provenance: required source branch.
    #[arg(long)]
    source_branch: Option<String>,
    /// SLSA provenance: required source tag.
    #[arg(long)]
    source_tag: Option<String>,
    /// SLSA provenance: required source commit.
    #[arg(long)]
    source_digest: Option<String>,
    /// Content check on the statement: PATH=VALUE or PATH~=REGEX (dotted JSON path, anchored
    /// regex), repeatable.
    #[arg(long = "check", value_parser = parse_check)]
    checks: Vec<sigil::policy::PathCheck>,
    #[command(flatten)]
    limit: BlobLimitArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
struct InspectArgs {
    #[command(flatten)]
    key: VerifyingKeyArgs,
    #[command(flatten)]
    keyless: KeylessArgs,
    #[command(flatten)]
    evidence: EvidenceArgs,
    /// Also show what did not verify (marked unverified, with why) and unsigned SBOMs.
    #[arg(long)]
    include_unverified: bool,
    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    #[command(flatten)]
    limit: BlobLimitArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Format of stdout.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
    /// The image.
    image: String,
}

#[derive(Args, Debug)]
struct TreeArgs {
    #[command(flatten)]
    sig_repo: SignatureRepositoryArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Format of stdout.
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
    /// The image.
    image: String,
}

fn parse_check(s: &str) -> Result<sigil::policy::PathCheck, String> {
    sigil::policy::PathCheck::parse(s)
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("annotation {s:?} is not key=value")),
    }
}

/// Runs the parsed command, its output flushed (see `stdout`).
pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    stdout::finish(dispatch(cli))
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::GenerateKeyPair(a) => keyfiles::generate(a.algorithm, &a.output_key_prefix, a.force),
        Command::ImportKeyPair(a) => keyfiles::import(&a.key, &a.output_key_prefix, a.force),
        Command::PublicKey(a) => keyfiles::public_key(&a.key, a.outfile.as_deref()),
        Command::Sign(a) => image::sign(a),
        Command::Verify(a) => image::verify(a),
        Command::Tree(a) => image::tree(a),
        Command::Attest(a) => image::attest(a),
        Command::VerifyAttestation(a) => image::verify_attestation(a),
        Command::Inspect(a) => image::inspect(a),
        Command::Attach(AttachCommand::Sbom(a)) => artifacts::attach_sbom(a),
        Command::Download(DownloadCommand::Attestation(a)) => artifacts::download_attestation(a),
        Command::Download(DownloadCommand::Sbom(a)) => artifacts::download_sbom(a),
        Command::SignBlob(a) => blob::sign_blob(a),
        Command::AttestBlob(a) => blob::attest_blob(a),
        Command::VerifyBlob(a) => blob::verify_blob(a),
        Command::TrustedRoot(TrustedRootCommand::Show(a)) => blob::show_trusted_root(a),
        Command::TrustedRoot(TrustedRootCommand::Update(a)) => blob::update_trusted_root(a),
        Command::Policy(PolicyCommand::Check(a)) => gate::check(a),
        Command::Gate(a) => gate::gate(a),
        Command::Webhook(a) => webhook::webhook(a),
        Command::Copy(a) => copy::copy(a),
        Command::Completion(a) => tooling::completion(a),
        Command::Man(a) => tooling::man(a),
        Command::Version(a) => tooling::version(a),
    }
}
