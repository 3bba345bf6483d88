//! One AdmissionReview in, one AdmissionReview out: the webhook's decision about a request.
//!
//! Why this module exists: it is the one place that turns what the API server sends
//! (AdmissionReview v1, read with kube-core's types) into what it must answer, with no HTTP
//! in sight, so every rule of admission is testable on its own: which requests are let
//! through untouched (DELETE, kinds that run no container), that every image of a pod spec is
//! judged (concurrently, within one deadline), how denials and warnings read, and the JSON
//! Patch that pins admitted images to their digests on `/mutate`.
//!
//! What it must never do: allow on error. A review that names a uid gets an answer with that
//! uid, and anything that went wrong (an object that is not a valid workload, an image
//! reference that does not parse, a decision not made within the deadline) denies it. A body
//! that is not an AdmissionReview v1 with a request is [`MalformedReview`]: the server answers
//! it with an HTTP error, which the API server treats as a failed call (denied under
//! `failurePolicy: Fail`).

use std::time::Duration;

use futures_util::future::join_all;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::response::Status;
use kube_core::DynamicObject;
use tokio::time::Instant;

use super::cache::Verdicts;
use super::metrics::Metrics;
use super::{Admission, Decision, Judge};
use crate::reference::RegistryRef;
use crate::workloads::{images_of, ContainerImage, WorkloadError};

/// Largest review body read: the API server's own request limit (3 MiB).
pub const MAX_REVIEW_BYTES: usize = 3 << 20;

/// The review versions answered.
const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// Which webhook the API server called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/validate`: admit or deny.
    Validate,
    /// `/mutate`: admit or deny, and pin admitted images to their digests.
    Mutate,
}

/// What the answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted, no warnings.
    Allowed,
    /// Admitted, with warnings.
    Warned,
    /// Refused.
    Denied,
}

/// A body that cannot be answered with an AdmissionReview (there is no uid to answer to).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReview {
    /// Not JSON, or not shaped as an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}")]
    NotAReview(String),
    /// Another kind or version.
    #[error("{kind} {api_version} is not answered: only AdmissionReview admission.k8s.io/v1 is (set admissionReviewVersions: [\"v1\"] in the webhook configuration)")]
    Version {
        /// The body's `apiVersion`.
        api_version: String,
        /// The body's `kind`.
        kind: String,
    },
    /// No `request` stanza.
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// When the review must be answered, and how long that was.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The instant.
    pub at: Instant,
    /// The budget it was set from (for messages).
    pub budget: Duration,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline { at: Instant::now() + budget, budget }
    }
}

/// The answer to one review.
pub struct Answer {
    /// The AdmissionReview to send back.
    pub review: AdmissionReview<DynamicObject>,
    /// What it says.
    pub verdict: Verdict,
}

impl Answer {
    /// The AdmissionReview as the API server reads it. `response.patch` is a Go `[]byte`,
    /// which JSON carries as base64 (the API reference, "kube-apiserver Admission (v1)");
    /// kube-core 5 serialises its `Vec<u8>` as an array of numbers (kube-rs issue 1781), so
    /// the patch is written here.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        use base64::Engine;
        let mut json = serde_json::to_value(&self.review)?;
        let patch = self.review.response.as_ref().and_then(|r| r.patch.as_ref());
        if let (Some(patch), Some(slot)) = (patch, json.pointer_mut("/response/patch")) {
            *slot = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
        }
        serde_json::to_vec(&json)
    }
}

/// One image of the object, and what was decided about it.
struct Judged {
    image: ContainerImage,
    reference: Option<RegistryRef>,
    decision: Judgement,
}

/// A decision, or none by the deadline.
enum Judgement {
    Made(Decision),
    /// Nothing was decided within this budget: denied, whatever the rule's mode.
    TimedOut(Duration),
}

impl Judged {
    fn admission(&self) -> Admission {
        match &self.decision {
            Judgement::Made(d) => d.admission(),
            Judgement::TimedOut(budget) => Admission::Deny(format!(
                "{}: could not check: no decision within the deadline of {} ms (the registry or the verification is too slow)",
                self.image.image,
                budget.as_millis()
            )),
        }
    }

    fn decision(&self) -> Option<&Decision> {
        match &self.decision {
            Judgement::Made(d) => Some(d),
            Judgement::TimedOut(_) => None,
        }
    }
}

/// Reads a review and answers it: every image of the object judged by `judge` through
/// `verdicts`, within `deadline`.
pub async fn answer<J: Judge>(
    verdicts: &Verdicts,
    judge: &J,
    metrics: &Metrics,
    endpoint: Endpoint,
    body: &[u8],
    deadline: Deadline,
    on_decision: Option<&dyn super::OnDecision>,
) -> Result<Answer, MalformedReview> {
    let request = parse(body)?;
    let response = AdmissionResponse::from(&request);
    if request.operation == Operation::Delete {
        return Ok(allow(response, Vec::new()));
    }
    let Some(object) = &request.object else {
        return Ok(deny(response, format!("the {} request carries no object to check", operation(&request))));
    };
    let images = match serde_json::to_value(object).map(|v| images_of(&v)) {
        Ok(Ok(images)) => images,
        // Runs no container: nothing to check.
        Ok(Err(WorkloadError::NotAWorkload { .. })) => return Ok(allow(response, Vec::new())),
        Ok(Err(e)) => return Ok(deny(response, format!("sigil cannot check {}: {e}", describe(&request)))),
        Err(e) => return Ok(deny(response, format!("sigil cannot read {}: {e}", describe(&request)))),
    };
    let judged = join_all(images.into_iter().map(|image| judge_one(verdicts, judge, image, deadline))).await;
    for j in &judged {
        match j.decision() {
            Some(d) => metrics.verdict(d),
            None => metrics.deadline_exceeded(),
        }
        // A dry run has no side effects (the webhook configurations say sideEffects:
        // NoneOnDryRun when summaries are written).
        if let (Some(hook), Some(reference), Some(d), false) =
            (on_decision, &j.reference, j.decision(), request.dry_run)
        {
            hook.decided(reference, d, judge.policy_digest());
        }
    }

    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for j in &judged {
        match j.admission() {
            Admission::Allow => {}
            Admission::Warn(why) => warnings.push(format!("{} {:?}: {why}", j.image.class, j.image.container)),
            Admission::Deny(why) => denials.push(format!("{} {:?}: {why}", j.image.class, j.image.container)),
        }
    }
    if !denials.is_empty() {
        let message = format!(
            "sigil denied {} of {} image(s) of {}: {}",
            denials.len(),
            judged.len(),
            describe(&request),
            denials.join("; ")
        );
        let mut denied = deny(response, message);
        if let Some(r) = &mut denied.review.response {
            r.warnings = (!warnings.is_empty()).then_some(warnings);
        }
        return Ok(denied);
    }
    let response = match endpoint {
        Endpoint::Validate => response,
        Endpoint::Mutate => match pins(&judged) {
            Ok(patch) if patch.0.is_empty() => response,
            Ok(patch) => match response.clone().with_patch(patch) {
                Ok(r) => r,
                Err(e) => return Ok(deny(response, format!("sigil could not write the digest patch: {e}"))),
            },
            Err(e) => return Ok(deny(response, format!("sigil could not write the digest patch: {e}"))),
        },
    };
    Ok(allow(response, warnings))
}

/// The review's request, after checking it is an AdmissionReview v1.
fn parse(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, MalformedReview> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| MalformedReview::NotAReview(e.to_string()))?;
    if review.types.api_version != API_VERSION || review.types.kind != KIND {
        return Err(MalformedReview::Version {
            api_version: review.types.api_version.clone(),
            kind: review.types.kind.clone(),
        });
    }
    review.try_into().map_err(|_| MalformedReview::NoRequest)
}

/// One image's decision: an image reference that does not parse fails, and a decision not
/// made by the deadline is a check that could not be made under an enforced rule: both deny.
async fn judge_one<J: Judge>(verdicts: &Verdicts, judge: &J, image: ContainerImage, deadline: Deadline) -> Judged {
    let reference = match RegistryRef::parse(&image.image) {
        Ok(r) => r,
        Err(e) => {
            let decision = Decision::not_an_image(&image.image, &e.to_string());
            return Judged { image, reference: None, decision: Judgement::Made(decision) };
        }
    };
    match tokio::time::timeout_at(deadline.at, verdicts.decide(judge, &reference)).await {
        Ok(mut decision) => {
            // The verdict may come from the cache, made for another tag of the same digest:
            // name the image as this object writes it.
            decision.image = image.image.clone();
            Judged { image, reference: Some(reference), decision: Judgement::Made(decision) }
        }
        Err(_) => Judged { image, reference: Some(reference), decision: Judgement::TimedOut(deadline.budget) },
    }
}

/// The JSON Patch that pins each admitted image written without a digest to the digest that
/// was judged: `name[:tag]` becomes `name[:tag]@digest`.
fn pins(judged: &[Judged]) -> Result<Patch, String> {
    let mut ops = Vec::new();
    for j in judged {
        let (Some(reference), Some(digest)) = (&j.reference, j.decision().and_then(Decision::digest)) else {
            continue;
        };
        let Some(value) = super::pinned(reference, &j.image.image, digest) else { continue };
        let path = PointerBuf::parse(j.image.pointer.as_str()).map_err(|e| format!("{}: {e}", j.image.pointer))?;
        let value = serde_json::Value::String(value);
        ops.push(PatchOperation::Replace(ReplaceOperation { path, value }));
    }
    Ok(Patch(ops))
}

fn allow(mut response: AdmissionResponse, warnings: Vec<String>) -> Answer {
    let verdict = if warnings.is_empty() { Verdict::Allowed } else { Verdict::Warned };
    response.warnings = (!warnings.is_empty()).then_some(warnings);
    Answer { review: response.into_review(), verdict }
}

fn deny(response: AdmissionResponse, message: String) -> Answer {
    let mut response = response.deny(&message);
    response.result = Status::failure(&message, "Forbidden").with_code(403);
    Answer { review: response.into_review(), verdict: Verdict::Denied }
}

fn operation(request: &AdmissionRequest<DynamicObject>) -> &'static str {
    match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// `Kind namespace/name` (or `Kind name`, or `a new Kind`).
fn describe(request: &AdmissionRequest<DynamicObject>) -> String {
    let kind = &request.kind.kind;
    match (request.namespace.as_deref(), request.name.as_str()) {
        (_, "") => format!("a new {kind}"),
        (Some(ns), name) => format!("{kind} {ns}/{name}"),
        (None, name) => format!("{kind} {name}"),
    }
}
