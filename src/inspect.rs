//! Listing what is attached to an image (unverified: this reports, it does not vouch).

use serde::Serialize;

use crate::attachments::{legacy_tag, ATTESTATION_SUFFIX, SBOM_SUFFIX, SIGNATURE_SUFFIX};
use crate::digest::Digest;
use crate::oci::manifest::{is_sbom_artifact, Manifest};
use crate::oci::{ManifestRef, Store, StoreError};

/// One attached layer.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedLayer {
    /// Layer digest.
    pub digest: Digest,
    /// Layer size in bytes.
    pub size: u64,
    /// Layer media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// For attestations, the predicate type the layer announces (unverified).
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
}

/// One attachment manifest (`.sig`, `.att` or `.sbom`).
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// `sig`, `att` or `sbom`.
    pub kind: &'static str,
    /// `location:tag`.
    pub tag: String,
    /// The attachment manifest's digest.
    pub manifest: Digest,
    /// Its size.
    pub size: u64,
    /// Its layers.
    pub layers: Vec<AttachedLayer>,
}

/// Lists the attachments of `digest` found in `store`.
pub async fn attachments<S: Store>(store: &S, digest: &Digest) -> Result<Vec<Attachment>, StoreError> {
    let kinds = [SIGNATURE_SUFFIX, ATTESTATION_SUFFIX, SBOM_SUFFIX];
    let fetched = futures_util::future::join_all(kinds.iter().map(|k| {
        let tag = legacy_tag(digest, k);
        async move { (k, store.get_manifest(&ManifestRef::Tag(tag.clone())).await, tag) }
    }))
    .await;
    let mut out = Vec::new();
    for (kind, res, tag) in fetched {
        let Some(raw) = res? else { continue };
        let layers = match Manifest::parse(&raw.bytes) {
            Ok(Manifest::Image(m)) => m
                .layers
                .into_iter()
                .map(|l| AttachedLayer {
                    predicate_type: l.annotation("predicateType").map(str::to_owned),
                    digest: l.digest,
                    size: l.size,
                    media_type: l.media_type,
                })
                .collect(),
            Ok(Manifest::Index(_)) => return Err(StoreError::Malformed(format!("{tag} is an index"))),
            Err(e) => return Err(StoreError::Malformed(format!("{tag}: {e}"))),
        };
        out.push(Attachment {
            kind,
            tag: format!("{}:{tag}", store.location()),
            size: raw.bytes.len() as u64,
            manifest: raw.digest,
            layers,
        });
    }
    Ok(out)
}

/// Whether the audit report shows material that did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// Only verified material (the count of the rest is given).
    Hide,
    /// Everything attached, unverified parts marked `"verified": false` with why.
    Show,
}

/// Who signed, as established by verification.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SignedBy {
    /// The public key given.
    Key,
    /// A Fulcio certificate.
    Keyless {
        /// Certificate SAN.
        identity: Option<String>,
        /// OIDC issuer.
        issuer: Option<String>,
    },
}

/// One signature in the report.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureEntry {
    /// Whether it verified.
    pub verified: bool,
    /// Legacy payload layer digest, or bundle referrer manifest digest.
    pub layer: Digest,
    /// Where it is stored: `legacy` (`.sig` tag) or `bundle` (OCI referrer).
    pub format: crate::attachments::Format,
    /// Who signed (verified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignedBy>,
    /// When, from the transparency log or a timestamp (keyless, or a key with evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The signed claims (verified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One attestation in the report.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationEntry {
    /// Whether it verified.
    pub verified: bool,
    /// Legacy envelope layer digest, or bundle referrer manifest digest.
    pub layer: Digest,
    /// Where it is stored: `legacy` (`.att` tag) or `bundle` (OCI referrer).
    pub format: crate::attachments::Format,
    /// The statement's predicate type (for unverified ones: as the unverified statement says).
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Who signed (verified only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignedBy>,
    /// When, from the transparency log or a timestamp (keyless, or a key with evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The predicate, summarised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::report::Summary>,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An SBOM attached as an OCI artifact: never verified (nothing signs it).
#[derive(Debug, Clone, Serialize)]
pub struct SbomEntry {
    /// Always false.
    pub verified: bool,
    /// The artifact manifest.
    pub manifest: Digest,
    /// Its artifact type.
    #[serde(rename = "artifactType")]
    pub artifact_type: String,
    /// SBOM size.
    pub size: u64,
    /// The SBOM, summarised (when it could be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::report::Summary>,
    /// Why it could not be summarised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything verified about an image (and, when asked, what did not verify).
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Image digest.
    pub digest: Digest,
    /// Signatures (verified first).
    pub signatures: Vec<SignatureEntry>,
    /// Attestations (verified first).
    pub attestations: Vec<AttestationEntry>,
    /// SBOM referrers (only with [`Unverified::Show`]).
    pub sboms: Vec<SbomEntry>,
    /// Unverified items left out of the report ([`Unverified::Hide`]).
    #[serde(rename = "hiddenUnverified")]
    pub hidden_unverified: usize,
    /// What could not be looked at (the report is complete for the rest).
    pub notes: Vec<String>,
}

fn signed_by(evidence: &Option<crate::verify::bundle::BundleFacts>) -> (SignedBy, Option<String>) {
    match evidence {
        None => (SignedBy::Key, None),
        // A key signature checked with its log entry or timestamp: the key, and when.
        Some(f) if f.identity.is_none() => {
            (SignedBy::Key, f.integrated_time.clone().or_else(|| f.timestamps.first().cloned()))
        }
        Some(f) => {
            (SignedBy::Keyless { identity: f.identity.clone(), issuer: f.issuer.clone() }, f.integrated_time.clone())
        }
    }
}

/// Builds the audit report of the image at `digest`: its signatures and attestations
/// verified against `signer`, each verified attestation summarised.
pub async fn audit<S: Store, T: Store>(
    image_store: &S,
    sig_store: &T,
    digest: &Digest,
    signer: crate::verify::ImageSigner<'_>,
    hints: &crate::verify::PayloadHints,
    unverified: Unverified,
    max_blob_bytes: u64,
) -> Result<AuditReport, crate::verify::VerifyError> {
    use crate::verify::attestation::{verify_attestations, AttestationPolicy, AttestationVerdict};
    use crate::verify::{verify_digest, Examined, Policy, Problem, Verdict};
    let reason = |e: &Examined| match &e.problem {
        Problem::Rejected(r) => r.to_string(),
        Problem::CouldNotCheck(s) => format!("could not check: {s}"),
    };
    let none = crate::payload::Annotations::new();
    let formats = crate::attachments::Formats::Any;
    let policy = Policy { signer, annotations: &none, max_blob_bytes, formats };
    let (verified, rejected) = match verify_digest(sig_store, digest, &policy, hints).await {
        Ok(Verdict::Verified { signatures, rejected, .. }) => (signatures, rejected),
        Ok(Verdict::NoMatchingSignature { rejected, .. }) => (vec![], rejected),
        Ok(Verdict::NoSignatures { .. }) | Ok(Verdict::ImageNotFound) => (vec![], vec![]),
        Err(e) => return Err(e),
    };
    let mut hidden = 0;
    let mut signatures: Vec<SignatureEntry> = verified
        .iter()
        .map(|v| {
            let v = v.get();
            let (by, time) = signed_by(&v.keyless);
            SignatureEntry {
                verified: true,
                layer: v.layer.clone(),
                format: v.format,
                signer: Some(by),
                time,
                payload: Some(v.claims.to_json()),
                reason: None,
            }
        })
        .collect();
    match unverified {
        Unverified::Hide => hidden += rejected.len(),
        Unverified::Show => signatures.extend(rejected.iter().map(|e| SignatureEntry {
            verified: false,
            layer: e.layer.clone(),
            format: e.format,
            signer: None,
            time: None,
            payload: None,
            reason: Some(reason(e)),
        })),
    }

    let slsa = crate::policy::SlsaExpectations::default();
    let apolicy = AttestationPolicy { signer, predicate_type: None, max_blob_bytes, slsa: &slsa, checks: &[], formats };
    let (verified, rejected) =
        match verify_attestations(image_store, sig_store, &ManifestRef::Digest(digest.clone()), &apolicy).await {
            Ok(AttestationVerdict::Verified { statements, rejected, .. }) => (statements, rejected),
            Ok(AttestationVerdict::NoMatchingAttestation { rejected, .. }) => (vec![], rejected),
            Ok(_) => (vec![], vec![]),
            Err(e) => return Err(e),
        };
    let mut attestations: Vec<AttestationEntry> = verified
        .iter()
        .map(|v| {
            let v = v.get();
            let (by, time) = signed_by(&v.keyless);
            let predicate = v.statement.get("predicate").unwrap_or(&serde_json::Value::Null);
            AttestationEntry {
                verified: true,
                layer: v.layer.clone(),
                format: v.format,
                predicate_type: Some(v.predicate_type.clone()),
                signer: Some(by),
                time,
                summary: Some(crate::report::summarize(&v.predicate_type, predicate)),
                reason: None,
            }
        })
        .collect();
    let mut sboms = Vec::new();
    let mut notes = Vec::new();
    match unverified {
        Unverified::Hide => {
            hidden += rejected.len();
            // Only counted: a registry that cannot list referrers does not spoil the report.
            match crate::attachments::referrers::list_referrers(image_store, digest, None).await {
                Ok(r) => {
                    hidden += r.iter().filter(|e| e.artifact_type.as_deref().is_some_and(is_sbom_artifact)).count()
                }
                Err(e) => notes.push(format!("SBOM referrers could not be listed: {e}")),
            }
        }
        Unverified::Show => {
            for e in &rejected {
                // Read as is, without any signature check: shown marked unverified (legacy
                // envelopes only; a bundle's reason says what it is).
                let blob = match e.format {
                    crate::attachments::Format::Legacy => sig_store.get_blob(&e.layer, max_blob_bytes).await.ok(),
                    crate::attachments::Format::Bundle => None,
                };
                let statement = blob
                    .and_then(|b| crate::dsse::Envelope::parse(&b).ok())
                    .and_then(|env| env.payload_bytes().ok())
                    .and_then(|p| crate::intoto::Statement::parse(&p).ok());
                attestations.push(AttestationEntry {
                    verified: false,
                    layer: e.layer.clone(),
                    format: e.format,
                    predicate_type: statement.as_ref().map(|s| s.predicate_type.clone()),
                    signer: None,
                    time: None,
                    summary: statement.as_ref().map(|s| crate::report::summarize(&s.predicate_type, &s.predicate)),
                    reason: Some(reason(e)),
                });
            }
            for entry in crate::attachments::referrers::list_referrers(image_store, digest, None).await? {
                let artifact_type = entry.artifact_type.clone().unwrap_or_default();
                if !is_sbom_artifact(&artifact_type) {
                    continue;
                }
                let read = async {
                    let layer = crate::attachments::referrers::artifact_layer(image_store, &entry, digest).await?;
                    let body = image_store.get_blob(&layer.digest, max_blob_bytes).await?;
                    crate::report::summarize_sbom(&layer.media_type, &body)
                        .map(|s| (layer.size, s))
                        .ok_or_else(|| StoreError::Malformed(format!("not a {} document", layer.media_type)))
                };
                let (size, summary, reason) = match read.await {
                    Ok((size, s)) => (size, Some(s), None),
                    Err(e) => (0, None, Some(e.to_string())),
                };
                sboms.push(SbomEntry { verified: false, manifest: entry.digest, artifact_type, size, summary, reason });
            }
        }
    }
    Ok(AuditReport { digest: digest.clone(), signatures, attestations, sboms, hidden_unverified: hidden, notes })
}
