//! The Sigstore signing configuration (protobuf-specs `SigningConfig`, media type v0.2): which
//! Fulcio, Rekor, timestamp-authority and OIDC services a signer uses, chosen by API version
//! and validity window as sigstore-go (cosign 3) chooses them. Pure: bytes and the time in,
//! URLs out. Fetching it (TUF, `--signing-config FILE`) is the edges' business.
//!
//! Selection, per kind of service:
//! - only services valid at the signing time (`validFor.start` ≤ now, and now ≤ `end` when
//!   there is one) and of an API version the client speaks count;
//! - the highest such API version wins, and only services of that version are used;
//! - newest first (latest `start`), at most one per operator;
//! - for Rekor and TSAs the configuration's selector then says how many: `ALL`, `ANY` (one,
//!   picked by the caller's chooser) or `EXACT` (`count` of them, distinct).

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;

/// The only media type accepted.
pub const MEDIA_TYPE_V02: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// The public-good instance's signing configuration (vendored from sigstore's TUF
/// repository; its source is in testdata/vectors/README.md).
pub const PUBLIC_GOOD: &[u8] = include_bytes!("../testdata/vectors/trust/public-good.signing_config.v0.2.json");
/// Largest signing configuration read.
pub const MAX_SIGNING_CONFIG_BYTES: usize = 1 << 20;
/// Most services of one kind listed.
pub const MAX_SERVICES: usize = 256;

/// Why a signing configuration is refused, or no service fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningConfigError {
    /// Not a signing configuration sigil reads.
    #[error("signing configuration: {0}")]
    Malformed(String),
    /// No service of this kind is valid now in an API version sigil speaks.
    #[error("signing configuration: no {kind} service valid at {at} with API version {versions:?}")]
    NoService {
        /// Which kind.
        kind: &'static str,
        /// The time asked about.
        at: String,
        /// The versions sigil speaks.
        versions: Vec<u32>,
    },
    /// `EXACT` asks for more services than there are (or for none).
    #[error("signing configuration: the {kind} selector asks for {count} service(s), {available} available")]
    Count {
        /// Which kind.
        kind: &'static str,
        /// Asked for.
        count: u32,
        /// Available.
        available: usize,
    },
}

fn malformed(reason: impl Into<String>) -> SigningConfigError {
    SigningConfigError::Malformed(reason.into())
}

/// One service endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its base URL (http or https).
    pub url: String,
    /// Its major API version (Rekor 1 or 2, Fulcio 1, TSA 1, OIDC 1).
    pub major_api_version: u32,
    /// Valid from.
    pub start: Option<Timestamp>,
    /// Valid until (inclusive), if it ends.
    pub end: Option<Timestamp>,
    /// Who runs it (at most one service per operator is used).
    pub operator: String,
}

impl Service {
    /// Whether the service may be used at `t`.
    pub fn valid_at(&self, t: Timestamp) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// How many services of a kind to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// Every one.
    All,
    /// One.
    Any,
    /// Exactly this many, distinct.
    Exact(u32),
}

/// A parsed signing configuration.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Fulcio certificate authorities.
    pub ca: Vec<Service>,
    /// OIDC providers.
    pub oidc: Vec<Service>,
    /// Rekor transparency logs.
    pub rekor: Vec<Service>,
    /// How many logs to write to.
    pub rekor_selector: Selector,
    /// RFC 3161 timestamp authorities.
    pub tsa: Vec<Service>,
    /// How many timestamps to get.
    pub tsa_selector: Selector,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// protojson (sigstore-go, cosign) also reads the proto field names: so does sigil, and a field
// given under both names is refused.
struct Raw {
    #[serde(alias = "media_type")]
    media_type: String,
    #[serde(default, alias = "ca_urls")]
    ca_urls: Vec<RawService>,
    #[serde(default, alias = "oidc_urls")]
    oidc_urls: Vec<RawService>,
    #[serde(default, alias = "rekor_tlog_urls")]
    rekor_tlog_urls: Vec<RawService>,
    #[serde(default, alias = "rekor_tlog_config")]
    rekor_tlog_config: Option<RawConfig>,
    #[serde(default, alias = "tsa_urls")]
    tsa_urls: Vec<RawService>,
    #[serde(default, alias = "tsa_config")]
    tsa_config: Option<RawConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawService {
    url: String,
    #[serde(alias = "major_api_version")]
    major_api_version: u32,
    #[serde(default, alias = "valid_for")]
    valid_for: Option<RawRange>,
    #[serde(default)]
    operator: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    count: Option<u32>,
}

fn time(field: &str, s: &Option<String>) -> Result<Option<Timestamp>, SigningConfigError> {
    s.as_deref()
        .map(|t| t.parse::<Timestamp>().map_err(|e| malformed(format!("{field}: {t:?} is not an RFC 3339 time ({e})"))))
        .transpose()
}

fn service(kind: &str, raw: RawService) -> Result<Service, SigningConfigError> {
    let url = reqwest::Url::parse(&raw.url).map_err(|e| malformed(format!("{kind} URL {:?}: {e}", raw.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(malformed(format!("{kind} URL {:?} is not an http(s) URL", raw.url)));
    }
    let range = raw.valid_for.unwrap_or(RawRange { start: None, end: None });
    let (start, end) = (time("validFor.start", &range.start)?, time("validFor.end", &range.end)?);
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(malformed(format!("{kind} {}: validity ends before it starts", raw.url)));
        }
    }
    Ok(Service { url: raw.url, major_api_version: raw.major_api_version, start, end, operator: raw.operator })
}

fn services(kind: &str, raw: Vec<RawService>) -> Result<Vec<Service>, SigningConfigError> {
    if raw.len() > MAX_SERVICES {
        return Err(malformed(format!("more than {MAX_SERVICES} {kind} services")));
    }
    raw.into_iter().map(|s| service(kind, s)).collect()
}

fn selector(kind: &str, raw: Option<RawConfig>) -> Result<Selector, SigningConfigError> {
    let Some(c) = raw else { return Ok(Selector::Any) };
    match c.selector.as_deref() {
        Some("ALL") => Ok(Selector::All),
        Some("ANY") | None => Ok(Selector::Any),
        Some("EXACT") => Ok(Selector::Exact(c.count.unwrap_or(0))),
        Some(other) => Err(malformed(format!("{kind} selector {other:?} is not ALL, ANY or EXACT"))),
    }
}

impl SigningConfig {
    /// Parses a signing configuration (bounded; keys are case-exact and appear once).
    pub fn parse(bytes: &[u8]) -> Result<Self, SigningConfigError> {
        if bytes.len() > MAX_SIGNING_CONFIG_BYTES {
            return Err(malformed(format!("larger than {MAX_SIGNING_CONFIG_BYTES} bytes")));
        }
        crate::json::reject_ambiguous_keys(bytes).map_err(|e| malformed(format!("ambiguous JSON: {e}")))?;
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        if raw.media_type != MEDIA_TYPE_V02 {
            return Err(malformed(format!("media type {:?}, not {MEDIA_TYPE_V02}", raw.media_type)));
        }
        Ok(SigningConfig {
            ca: services("CA", raw.ca_urls)?,
            oidc: services("OIDC", raw.oidc_urls)?,
            rekor: services("Rekor", raw.rekor_tlog_urls)?,
            rekor_selector: selector("Rekor", raw.rekor_tlog_config)?,
            tsa: services("TSA", raw.tsa_urls)?,
            tsa_selector: selector("TSA", raw.tsa_config)?,
        })
    }
}

/// The services usable at `now` in the highest of `versions` that has any: newest first, one
/// per operator.
fn usable<'a>(
    kind: &'static str,
    services: &'a [Service],
    versions: &[u32],
    now: Timestamp,
) -> Result<Vec<&'a Service>, SigningConfigError> {
    let mut sorted: Vec<&Service> = services.iter().collect();
    // Newest first; a service without a start is the oldest.
    sorted.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut versions = versions.to_vec();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    for v in &versions {
        let mut operators = HashSet::new();
        let found: Vec<&Service> = sorted
            .iter()
            .copied()
            .filter(|s| s.major_api_version == *v && s.valid_at(now))
            .filter(|s| operators.insert(s.operator.clone()))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(SigningConfigError::NoService { kind, at: now.to_string(), versions })
}

/// The one service of a kind to use (Fulcio, OIDC): the newest valid one in the highest
/// version spoken.
pub fn select_one<'a>(
    kind: &'static str,
    services: &'a [Service],
    versions: &[u32],
    now: Timestamp,
) -> Result<&'a Service, SigningConfigError> {
    let found = usable(kind, services, versions, now)?;
    // `usable` returns a non-empty list or an error.
    found.into_iter().next().ok_or(SigningConfigError::NoService {
        kind,
        at: now.to_string(),
        versions: versions.to_vec(),
    })
}

/// The services of a kind to use (Rekor, TSA) as `selector` says; `choose(n)` returns an index
/// below `n` (random in production, fixed in tests).
pub fn select<'a>(
    kind: &'static str,
    services: &'a [Service],
    selector: Selector,
    versions: &[u32],
    now: Timestamp,
    choose: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<&'a Service>, SigningConfigError> {
    let mut found = usable(kind, services, versions, now)?;
    match selector {
        Selector::All => Ok(found),
        Selector::Any => Ok(vec![found.swap_remove(choose(found.len()).min(found.len() - 1))]),
        Selector::Exact(count) => {
            if count == 0 || count as usize > found.len() {
                return Err(SigningConfigError::Count { kind, count, available: found.len() });
            }
            let mut picked = Vec::new();
            for _ in 0..count {
                let i = choose(found.len()).min(found.len() - 1);
                picked.push(found.swap_remove(i));
            }
            Ok(picked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn public_good() -> SigningConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors/trust/public-good.signing_config.v0.2.json");
        SigningConfig::parse(&std::fs::read(path).expect("vendored signing config")).unwrap()
    }

    #[test]
    fn public_good_configuration_selects_its_services() {
        let c = public_good();
        let now = ts("2026-11-28T00:00:00Z");
        assert_eq!(select_one("CA", &c.ca, &[1], now).unwrap().url, "https://fulcio.sigstore.dev");
        assert_eq!(select_one("OIDC", &c.oidc, &[1], now).unwrap().url, "https://oauth2.sigstore.dev/auth");
        let rekor = select("Rekor", &c.rekor, c.rekor_selector, &[1, 2], now, &mut |_| 0).unwrap();
        assert_eq!(rekor.len(), 1);
        assert_eq!(rekor[0].url, "https://rekor.sigstore.dev");
        let tsa = select("TSA", &c.tsa, c.tsa_selector, &[1], now, &mut |_| 0).unwrap();
        assert_eq!(tsa[0].url, "https://timestamp.sigstore.dev/api/v1/timestamp");
        // Before the TSA's window opened there is none.
        let early = ts("2025-01-01T00:00:00Z");
        assert!(matches!(
            select("TSA", &c.tsa, c.tsa_selector, &[1], early, &mut |_| 0),
            Err(SigningConfigError::NoService { .. })
        ));
    }

    fn config(services: &str, rekor_config: &str) -> Result<SigningConfig, SigningConfigError> {
        SigningConfig::parse(
            format!(r#"{{"mediaType":"{MEDIA_TYPE_V02}","rekorTlogUrls":[{services}]{rekor_config}}}"#).as_bytes(),
        )
    }

    fn svc(url: &str, version: u32, start: &str, end: Option<&str>, operator: &str) -> String {
        let end = end.map(|e| format!(r#","end":"{e}""#)).unwrap_or_default();
        format!(
            r#"{{"url":"{url}","majorApiVersion":{version},"validFor":{{"start":"{start}"{end}}},"operator":"{operator}"}}"#
        )
    }

    /// The highest API version wins; within it the newest service valid now, one per operator;
    /// expired and not-yet-valid services are skipped.
    // see: issue 10
    #[test]
    fn rekor_v2_preferred_newest_valid_one_per_operator() {
        let s = [
            svc("https://v1.example", 1, "2021-01-01T00:00:00Z", None, "a"),
            svc("https://v2-old.example", 2, "2024-01-01T00:00:00Z", None, "a"),
            svc("https://v2-new.example", 2, "2025-01-01T00:00:00Z", None, "a"),
            svc("https://v2-b.example", 2, "2024-06-01T00:00:00Z", None, "b"),
            svc("https://v2-ended.example", 2, "2024-01-01T00:00:00Z", Some("2025-06-01T00:00:00Z"), "c"),
            svc("https://v2-future.example", 2, "2030-01-01T00:00:00Z", None, "d"),
        ]
        .join(",");
        let c = config(&s, r#","rekorTlogConfig":{"selector":"ALL"}"#).unwrap();
        let now = ts("2026-01-01T00:00:00Z");
        let urls = |v: Vec<&Service>| v.into_iter().map(|s| s.url.clone()).collect::<Vec<_>>();
        assert_eq!(
            urls(select("Rekor", &c.rekor, c.rekor_selector, &[1, 2], now, &mut |_| 0).unwrap()),
            ["https://v2-new.example", "https://v2-b.example"]
        );
        // A client that speaks only v1 gets the v1 log.
        assert_eq!(
            urls(select("Rekor", &c.rekor, Selector::All, &[1], now, &mut |_| 0).unwrap()),
            ["https://v1.example"]
        );
        // ANY: one, the one chosen; EXACT 2: two distinct; EXACT 3: refused.
        assert_eq!(
            urls(select("Rekor", &c.rekor, Selector::Any, &[2], now, &mut |_| 1).unwrap()),
            ["https://v2-b.example"]
        );
        let two = select("Rekor", &c.rekor, Selector::Exact(2), &[2], now, &mut |_| 0).unwrap();
        assert_eq!(two.len(), 2);
        assert_ne!(two[0].url, two[1].url);
        assert!(matches!(
            select("Rekor", &c.rekor, Selector::Exact(3), &[2], now, &mut |_| 0),
            Err(SigningConfigError::Count { count: 3, available: 2, .. })
        ));
    }

    /// Refused: another media type, unknown fields, keys twice or in two cases, non-http
    /// URLs, bad times, an inverted window, an unknown selector.
    // see: issue 10
    #[test]
    fn malformed_signing_configurations_are_refused() {
        let ok = svc("https://r.example", 2, "2025-01-01T00:00:00Z", None, "a");
        assert!(config(&ok, "").is_ok());
        for (services, extra, why) in [
            (ok.clone(), r#","rekorTlogConfig":{"selector":"SOME"}"#, "selector"),
            (ok.clone(), r#","rekorUrls":[]"#, "unknown field"),
            (ok.clone(), r#","MediaType":"x""#, "ambiguous"),
            (svc("file:///etc/passwd", 2, "2025-01-01T00:00:00Z", None, "a"), "", "http(s)"),
            (svc("https://r.example", 2, "yesterday", None, "a"), "", "RFC 3339"),
            (svc("https://r.example", 2, "2025-01-01T00:00:00Z", Some("2024-01-01T00:00:00Z"), "a"), "", "ends before"),
        ] {
            let e = config(&services, extra).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // The proto field names, as protojson reads them: accepted; both spellings at once: refused.
        let snake = format!(
            r#"{{"media_type":"{MEDIA_TYPE_V02}","rekor_tlog_urls":[{{"url":"https://r.example","major_api_version":2,"valid_for":{{"start":"2025-01-01T00:00:00Z"}}}}]}}"#
        );
        assert_eq!(SigningConfig::parse(snake.as_bytes()).unwrap().rekor[0].major_api_version, 2);
        let both = format!(r#"{{"mediaType":"{MEDIA_TYPE_V02}","media_type":"{MEDIA_TYPE_V02}"}}"#);
        assert!(SigningConfig::parse(both.as_bytes()).is_err());
        let other = br#"{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.1+json"}"#;
        assert!(SigningConfig::parse(other).unwrap_err().to_string().contains("media type"));
        assert!(SigningConfig::parse(&vec![b' '; MAX_SIGNING_CONFIG_BYTES + 1]).is_err());
    }
}
