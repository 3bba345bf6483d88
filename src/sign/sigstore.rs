//! Signing with Sigstore's services: a signer (a managed key, or an ephemeral key with a
//! Fulcio certificate for an OIDC identity) and the witnesses of when it signed (a
//! transparency log, a timestamp authority), turned into a Sigstore bundle that is verified
//! before the caller may write it anywhere.
//!
//! The order, for each signature:
//! 1. the signature is timestamped by the TSA (when the signing configuration has one);
//! 2. when there is a timestamp, a keyless signer's certificate is checked against the trusted
//!    root (chain, SCT, identity) at its time, with the signature, before the signature goes to
//!    the log (without one, a v1 log's integrated time is the first verified time: step 4);
//! 3. the log records it, and its answer must record exactly what was proposed;
//! 4. the finished bundle is verified as any verifier would (`verify::bundle`): inclusion
//!    proof against a signed checkpoint, SET, timestamps, certificate. Only then is it
//!    returned.
//!
//! The services are traits ([`CertificateAuthority`], [`TransparencyLog`],
//! [`TimestampAuthority`]): the flow is the same against the real ones and test doubles.

use crate::bundle::{self, Content, Evidence, Material};
use crate::digest::Digest;
use crate::dsse::Envelope;
use crate::fulcio::{CertificateAuthority, CertificateChain, FulcioError};
use crate::identity::Matcher;
use crate::keys::{KeyAlgorithm, KeyError, Nonce, PrivateKey};
use crate::oidc::{IdentityToken, TokenError, SIGSTORE_AUDIENCE};
use crate::rekor::{Proposal, RekorError, TransparencyLog, Verifier};
use crate::trust::Trust;
use crate::tsa::{TimestampAuthority, TsaError};
use crate::verify::bundle::{
    check_before_logging, verify_bundle, Artifact, BundleFacts, BundleRejection, Signer as Expect,
};
use crate::verify::Verified;

/// Why nothing was signed.
#[derive(Debug, thiserror::Error)]
pub enum SigstoreError {
    /// The identity token cannot be used (checked before any request).
    #[error("{0}")]
    Token(#[from] TokenError),
    /// Fulcio gave no usable certificate.
    #[error(transparent)]
    Fulcio(#[from] FulcioError),
    /// The certificate, the signature or the timestamp does not verify against the trusted root.
    #[error("the certificate, signature or timestamp does not verify against the trusted root ({0}); nothing was sent to the log")]
    Certificate(BundleRejection),
    /// What was signed is not known by a SHA-256 digest.
    #[error("{0} is not a SHA-256 digest; nothing was signed")]
    Digest(String),
    /// The log gave no usable entry.
    #[error(transparent)]
    Rekor(#[from] RekorError),
    /// The timestamp authority gave no usable timestamp.
    #[error(transparent)]
    Tsa(#[from] TsaError),
    /// The finished bundle does not verify.
    #[error("the signed bundle does not verify ({0}); nothing was written")]
    Unverified(BundleRejection),
    /// The key cannot be written into the bundle.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Witnesses without a trusted root to check their evidence against.
    #[error("no trusted root to check the log entry and timestamps against")]
    NoTrust,
    /// A keyless signature needs a witness of its time.
    #[error(
        "keyless signing needs a transparency log or a timestamp authority: the certificate expires within minutes"
    )]
    NoWitness,
}

/// Who signs.
pub struct Signer {
    key: PrivateKey,
    material: Identity,
}

enum Identity {
    Key,
    Certificate { chain: CertificateChain, identity: Matcher, issuer: Matcher },
}

impl Signer {
    /// A managed key.
    pub fn key(key: PrivateKey) -> Signer {
        Signer { key, material: Identity::Key }
    }

    /// An ephemeral P-256 key (in memory only, zeroized on drop) certified by `ca` for the
    /// identity in `token`. The token is refused before any request when it has expired or
    /// is not for Sigstore.
    pub async fn keyless(
        ca: &impl CertificateAuthority,
        token: &IdentityToken,
        now_unix: i64,
    ) -> Result<Signer, SigstoreError> {
        token.check(now_unix, SIGSTORE_AUDIENCE)?;
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let chain = ca.certificate(token, &key).await?;
        let claims = token.claims();
        // Fulcio writes the verified email for email issuers; for CI issuers the SAN is a
        // workflow URI sigil cannot predict, so only the issuer is pinned there.
        let identity = match &claims.email {
            Some(email) => Matcher::Exact(email.clone()),
            None => Matcher::regex(".+").map_err(|e| SigstoreError::Token(TokenError::Malformed(e.to_string())))?,
        };
        let issuer = Matcher::Exact(claims.issuer.clone());
        Ok(Signer { key, material: Identity::Certificate { chain, identity, issuer } })
    }

    /// The signing key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The rest of Fulcio's chain after the signing certificate (DER), for a keyless signer.
    pub fn chain_rest(&self) -> &[Vec<u8>] {
        match &self.material {
            Identity::Key => &[],
            Identity::Certificate { chain, .. } => chain.certificates.get(1..).unwrap_or_default(),
        }
    }

    /// The signing certificate (DER), for a keyless signer.
    pub fn certificate(&self) -> Option<&[u8]> {
        match &self.material {
            Identity::Key => None,
            Identity::Certificate { chain, .. } => Some(chain.leaf()),
        }
    }

    fn verifier(&self) -> Result<Verifier, KeyError> {
        Ok(match &self.material {
            Identity::Key => {
                let public = self.key.public_key();
                Verifier::PublicKey { der: public.to_der()?, algorithm: public.algorithm() }
            }
            Identity::Certificate { chain, .. } => Verifier::Certificate(chain.leaf().to_vec()),
        })
    }
}

/// The services that witness a signature, and the trusted root their evidence must verify
/// against.
pub struct Witnesses<'a, L, T> {
    /// The transparency log, unless the upload is turned off.
    pub log: Option<&'a L>,
    /// The timestamp authority, when the signing configuration has one.
    pub tsa: Option<&'a T>,
    /// The trusted root the finished bundle is verified against (needed when there is a
    /// witness).
    pub trust: Option<&'a Trust>,
}

/// No service: the type of [`Witnesses::none`]'s absent log and authority.
pub enum NoService {}

impl TransparencyLog for NoService {
    async fn record(&self, _: &Proposal) -> Result<serde_json::Value, RekorError> {
        match *self {}
    }
}

impl TimestampAuthority for NoService {
    async fn timestamp(&self, _: &[u8]) -> Result<Vec<u8>, TsaError> {
        match *self {}
    }
}

impl Witnesses<'static, NoService, NoService> {
    /// No witness: a key signature with no log entry or timestamp (`--tlog-upload=false`).
    pub fn none() -> Self {
        Witnesses { log: None, tsa: None, trust: None }
    }
}

impl<L, T> Witnesses<'_, L, T> {
    /// Whether any service witnesses the signature.
    pub fn any(&self) -> bool {
        self.log.is_some() || self.tsa.is_some()
    }

    /// How signatures are drawn: hedged when a log records them (it refuses an exact
    /// duplicate, and signing the same thing again must record it again), deterministic
    /// offline (an identical signature already attached is recognised).
    pub fn nonce(&self) -> Nonce {
        if self.log.is_some() {
            Nonce::Hedged
        } else {
            Nonce::Deterministic
        }
    }
}

impl<L: TransparencyLog, T: TimestampAuthority> Witnesses<'_, L, T> {
    /// A bundle of `signer`'s `signature` over the artifact whose digest is `digest`.
    pub async fn message_bundle(
        &self,
        signer: &Signer,
        digest: &Digest,
        signature: Vec<u8>,
    ) -> Result<(Vec<u8>, Option<Verified<BundleFacts>>), SigstoreError> {
        let sha = digest.sha256_bytes().ok_or_else(|| SigstoreError::Digest(digest.to_string()))?;
        let proposal =
            Proposal::HashedRekord { digest: sha, signature: signature.clone(), verifier: signer.verifier()? };
        let content = Content::Message { digest: &sha, signature: &signature };
        self.notarize(signer, content, &signature, proposal, Artifact::Sha256(digest)).await
    }

    /// A bundle of the DSSE `envelope` (signed once by `signer`) about `subject`.
    pub async fn dsse_bundle(
        &self,
        signer: &Signer,
        envelope: &Envelope,
        subject: &Digest,
    ) -> Result<(Vec<u8>, Option<Verified<BundleFacts>>), SigstoreError> {
        use base64::Engine as _;
        let signature = envelope
            .signatures
            .first()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(&s.sig).ok())
            .unwrap_or_default();
        let proposal = Proposal::Dsse { envelope: envelope.clone(), verifier: signer.verifier()? };
        self.notarize(signer, Content::Dsse(envelope), &signature, proposal, Artifact::Sha256(subject)).await
    }

    async fn notarize(
        &self,
        signer: &Signer,
        content: Content<'_>,
        signature: &[u8],
        proposal: Proposal,
        artifact: Artifact<'_>,
    ) -> Result<(Vec<u8>, Option<Verified<BundleFacts>>), SigstoreError> {
        let public = signer.key.public_key();
        let material = match &signer.material {
            Identity::Key => Material::Key(&public),
            Identity::Certificate { chain, .. } => Material::Certificate(chain.leaf()),
        };
        if self.log.is_none() && self.tsa.is_none() {
            return match signer.material {
                Identity::Key => Ok((bundle::assemble(material, content, &Evidence::default())?, None)),
                Identity::Certificate { .. } => Err(SigstoreError::NoWitness),
            };
        }
        let trust = self.trust.ok_or(SigstoreError::NoTrust)?;
        let pem;
        let expect = match &signer.material {
            Identity::Key => {
                pem = public.to_pem()?;
                Expect::Key(&pem)
            }
            Identity::Certificate { identity, issuer, .. } => Expect::Identity { identity, issuer },
        };
        let mut evidence = Evidence::default();
        if let Some(tsa) = self.tsa {
            evidence.timestamps.push(tsa.timestamp(signature).await?);
            if let Identity::Certificate { .. } = signer.material {
                let provisional = bundle::assemble(material, content, &evidence)?;
                check_before_logging(&provisional, artifact, &expect, trust).map_err(SigstoreError::Certificate)?;
            }
        }
        if let Some(log) = self.log {
            evidence.tlog_entries.push(log.record(&proposal).await?);
        }
        let finished = bundle::assemble(material, content, &evidence)?;
        let facts = verify_bundle(&finished, artifact, &expect, trust).map_err(SigstoreError::Unverified)?;
        Ok((finished, Some(facts)))
    }
}
