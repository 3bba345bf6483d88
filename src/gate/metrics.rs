//! The admission webhook's Prometheus metrics, in one place: what is counted, under which
//! names and labels, and their text exposition for `/metrics`.
//!
//! Why this module exists: operators alert on denials, on a registry that stops answering and
//! on a policy that no longer reloads; the names and labels are a contract with their
//! dashboards, so they are defined here once (prometheus-client, the Prometheus project's
//! Rust client). Label values come from closed enums, or from the policy's rule names (a
//! bounded set): never from a request.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::admission::Endpoint;
use super::{Decision, Outcome};

/// The media type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A closed set of label values: a Rust enum, and the text Prometheus sees for each.
macro_rules! labels {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, match self {
                    $($name::$variant => $text,)+
                })
            }
        }
    };
}

impl EncodeLabelValue for Endpoint {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(
            encoder,
            match self {
                Endpoint::Validate => "validate",
                Endpoint::Mutate => "mutate",
            },
        )
    }
}

labels! {
    /// What became of a review request.
    RequestResult {
        /// Admitted without warnings.
        Allowed => "allowed",
        /// Admitted with warnings.
        Warned => "warned",
        /// Refused (a denial, a check that could not be made, an image that did not parse).
        Denied => "denied",
        /// Not an AdmissionReview v1 with a request: answered 400.
        Malformed => "malformed",
        /// Refused before it was read: wrong method, body too large or too slow.
        Refused => "refused",
    }
}

labels! {
    /// Which cache.
    CacheKind {
        /// (repository, digest, policy digest) → decision.
        Verdict => "verdict",
        /// image reference → digest.
        Digest => "digest",
    }
}

labels! {
    /// A cache lookup's result.
    Lookup {
        /// Answered from the cache, or by a verification another request had started.
        Hit => "hit",
        /// This request ran the verification or resolution.
        Miss => "miss",
    }
}

labels! {
    /// A decision's outcome.
    OutcomeLabel {
        /// Every requirement held.
        Passed => "passed",
        /// Verification said no.
        Failed => "failed",
        /// The checks could not be made.
        CouldNotCheck => "could_not_check",
    }
}

labels! {
    /// Why a tag could not be resolved.
    ResolveFailure {
        /// The registry says the image does not exist.
        NotFound => "not_found",
        /// The registry could not be asked, or answered badly.
        Unreachable => "unreachable",
    }
}

labels! {
    /// What was reloaded.
    ReloadKind {
        /// The policy file.
        Policy => "policy",
        /// The TLS certificate and key.
        Certificate => "certificate",
    }
}

labels! {
    /// Whether a reload took.
    ReloadResult {
        /// The new file is in use.
        Ok => "ok",
        /// The new file was refused; the previous one stays in use.
        Failed => "failed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    endpoint: Endpoint,
    result: RequestResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabels {
    /// The rule's name, or `default` for the policy's default.
    rule: String,
    mode: String,
    outcome: OutcomeLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheKinds {
    cache: CacheKind,
    result: Lookup,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResolveLabels {
    reason: ResolveFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    what: ReloadKind,
    result: ReloadResult,
}

/// The webhook's metrics (all prefixed `sigil_webhook_`).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    cache: Family<CacheKinds, Counter>,
    registry_errors: Family<ResolveLabels, Counter>,
    deadline_exceeded: Counter,
    reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sigil_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Admission review requests, by endpoint and result", requests.clone());
        // 0.5 ms to ~16 s: a warm cache answers in well under a millisecond, a cold
        // verification in tens to hundreds, the deadline is seconds.
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register_with_unit(
            "review_duration",
            "Time from a review's headers to its answer",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "verdicts",
            "Image decisions in answered reviews, by rule, mode and outcome",
            verdicts.clone(),
        );
        let cache = Family::<CacheKinds, Counter>::default();
        registry.register("cache_lookups", "Verdict and digest cache lookups, by cache and hit or miss", cache.clone());
        let registry_errors = Family::<ResolveLabels, Counter>::default();
        registry.register(
            "registry_errors",
            "Tags that could not be resolved to a digest, by reason",
            registry_errors.clone(),
        );
        let deadline_exceeded = Counter::default();
        registry.register(
            "deadline_exceeded",
            "Images of answered reviews not decided within the deadline (denied)",
            deadline_exceeded.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register("reloads", "Policy and certificate reloads, by what and whether they took", reloads.clone());
        Metrics { registry, requests, latency, verdicts, cache, registry_errors, deadline_exceeded, reloads }
    }

    /// One answered (or refused) review request and how long it took.
    pub fn request(&self, endpoint: Endpoint, result: RequestResult, took: Duration) {
        self.requests.get_or_create(&RequestLabels { endpoint, result }).inc();
        self.latency.get_or_create(&EndpointLabels { endpoint }).observe(took.as_secs_f64());
    }

    /// One image decision in an answered review.
    pub fn verdict(&self, decision: &Decision) {
        let outcome = match decision.outcome() {
            Outcome::Passed => OutcomeLabel::Passed,
            Outcome::Failed { .. } => OutcomeLabel::Failed,
            Outcome::CouldNotCheck { .. } => OutcomeLabel::CouldNotCheck,
        };
        let rule = decision.rule().unwrap_or("default").to_owned();
        self.verdicts.get_or_create(&VerdictLabels { rule, mode: decision.mode().to_string(), outcome }).inc();
    }

    /// One cache lookup.
    pub fn cache(&self, cache: CacheKind, result: Lookup) {
        self.cache.get_or_create(&CacheKinds { cache, result }).inc();
    }

    /// One failed tag resolution.
    pub fn registry_error(&self, reason: ResolveFailure) {
        self.registry_errors.get_or_create(&ResolveLabels { reason }).inc();
    }

    /// One image not decided within a review's deadline.
    pub fn deadline_exceeded(&self) {
        self.deadline_exceeded.inc();
    }

    /// One reload attempt.
    pub fn reload(&self, what: ReloadKind, result: ReloadResult) {
        self.reloads.get_or_create(&ReloadLabels { what, result }).inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error would only cut the exposition short.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_under_its_name() {
        let m = Metrics::new();
        m.request(Endpoint::Validate, RequestResult::Denied, Duration::from_millis(3));
        m.cache(CacheKind::Verdict, Lookup::Hit);
        m.registry_error(ResolveFailure::Unreachable);
        m.reload(ReloadKind::Policy, ReloadResult::Failed);
        let text = m.encode();
        for line in [
            "sigil_webhook_requests_total{endpoint=\"validate\",result=\"denied\"} 1",
            "sigil_webhook_review_duration_seconds_count{endpoint=\"validate\"} 1",
            "sigil_webhook_cache_lookups_total{cache=\"verdict\",result=\"hit\"} 1",
            "sigil_webhook_registry_errors_total{reason=\"unreachable\"} 1",
            "sigil_webhook_reloads_total{what=\"policy\",result=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }
}
