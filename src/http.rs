//! The HTTP edge for Sigstore services (Fulcio, Rekor, the timestamp authority, GitHub's
//! token service): one client, every exchange bounded in time and size, retried only where
//! the caller says the request is idempotent, never redirected (a token or a signature goes
//! only to the URL the signing configuration names), and plain HTTP only to loopback.

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::Url;

/// Attempts for an idempotent request (transport errors, 429 and 5xx are retried).
const ATTEMPTS: u32 = 3;

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sending it twice has the effect of sending it once (Rekor answers 409 the second time).
    Idempotent,
    /// Send once.
    Once,
}

/// What a service answered.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, when there is one.
    pub location: Option<String>,
    /// The body (at most the caller's limit).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text for an error message: at most 300 characters of it.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.to_owned(),
        }
    }
}

/// A request that did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The URL cannot be used (not HTTP(S), or plain HTTP to a host other than loopback).
    #[error("{service} URL {url}: {reason}")]
    Url {
        /// Which service.
        service: &'static str,
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connection, TLS or stream failure.
    #[error("{service} at {url}: {message}")]
    Transport {
        /// Which service.
        service: &'static str,
        /// The URL.
        url: String,
        /// Every cause.
        message: String,
    },
    /// No complete answer within the deadline.
    #[error("{service} at {url} did not answer within {seconds} s")]
    Timeout {
        /// Which service.
        service: &'static str,
        /// The URL.
        url: String,
        /// The deadline.
        seconds: u64,
    },
    /// The answer was larger than the limit.
    #[error("{service} at {url} answered with more than {limit} bytes")]
    TooLarge {
        /// Which service.
        service: &'static str,
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// The client for one service.
#[derive(Clone)]
pub struct Service {
    name: &'static str,
    http: reqwest::Client,
    timeout: Duration,
}

impl Service {
    /// A client for `name` (used in messages) whose exchanges each end within `timeout`.
    pub fn new(name: &'static str, timeout: Duration) -> Result<Service, ServiceError> {
        let fail = |message: String| ServiceError::Transport { service: name, url: String::new(), message };
        let tls = crate::oci::tls::client_config(Vec::new()).map_err(fail)?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        Ok(Service { name, http, timeout })
    }

    /// The service's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Parses `url` and refuses what sigil does not send credentials or signatures to.
    pub fn url(&self, url: &str) -> Result<Url, ServiceError> {
        let refuse =
            |reason: &str| ServiceError::Url { service: self.name, url: url.to_owned(), reason: reason.into() };
        let parsed = Url::parse(url).map_err(|e| refuse(&e.to_string()))?;
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if is_loopback(&parsed) => Ok(parsed),
            "http" => Err(refuse("plain HTTP is used only on loopback; use https")),
            _ => Err(refuse("not an HTTP(S) URL")),
        }
    }

    /// Sends `body` to `url` and reads at most `limit` bytes of the answer, whatever its status.
    pub async fn post(
        &self,
        url: &Url,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        limit: usize,
        retry: Retry,
    ) -> Result<Reply, ServiceError> {
        self.exchange(url, limit, retry, || {
            let mut r = self.http.post(url.clone()).header("Content-Type", content_type).body(body.clone());
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r
        })
        .await
    }

    /// POSTs a JSON `body` to `url`, asking for JSON back.
    pub async fn post_json(&self, url: &Url, body: Vec<u8>, limit: usize, retry: Retry) -> Result<Reply, ServiceError> {
        self.post(url, "application/json", &[("Accept", "application/json")], body, limit, retry).await
    }

    /// GETs `url` (always idempotent) and reads at most `limit` bytes of the answer.
    pub async fn get(&self, url: &Url, headers: &[(&str, &str)], limit: usize) -> Result<Reply, ServiceError> {
        self.exchange(url, limit, Retry::Idempotent, || {
            let mut r = self.http.get(url.clone());
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r
        })
        .await
    }

    async fn exchange(
        &self,
        url: &Url,
        limit: usize,
        retry: Retry,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, ServiceError> {
        let attempts = if retry == Retry::Idempotent { ATTEMPTS } else { 1 };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            match tokio::time::timeout(self.timeout, self.once(url, limit, request())).await {
                Err(_) => {
                    last = Some(Err(ServiceError::Timeout {
                        service: self.name,
                        url: url.to_string(),
                        seconds: self.timeout.as_secs(),
                    }))
                }
                Ok(Err(e @ ServiceError::Transport { .. })) => last = Some(Err(e)),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(reply)) if reply.status == 429 || reply.status >= 500 => last = Some(Ok(reply)),
                Ok(Ok(reply)) => return Ok(reply),
            }
        }
        last.unwrap_or_else(|| {
            Err(ServiceError::Transport { service: self.name, url: url.to_string(), message: "no attempt".into() })
        })
    }

    async fn once(&self, url: &Url, limit: usize, request: reqwest::RequestBuilder) -> Result<Reply, ServiceError> {
        let transport = |e: reqwest::Error| ServiceError::Transport {
            service: self.name,
            url: url.to_string(),
            message: causes(&e),
        };
        let resp = request.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let too_large = || ServiceError::TooLarge { service: self.name, url: url.to_string(), limit };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(limit as u64).min(1 << 20) as usize);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, location, body })
    }
}

/// `127.0.0.0/8`, `::1` or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An error with every cause (reqwest's own message is often just "error sending request").
fn causes(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_https_or_loopback_http() {
        let s = Service::new("Rekor", Duration::from_secs(1)).unwrap();
        assert!(s.url("https://rekor.sigstore.dev").is_ok());
        assert!(s.url("http://127.0.0.1:3000/api").is_ok());
        assert!(s.url("http://[::1]:3000").is_ok());
        assert!(s.url("http://localhost:3000").is_ok());
        for bad in ["http://rekor.example.com", "http://10.0.0.1", "ftp://127.0.0.1", "rekor"] {
            assert!(matches!(s.url(bad), Err(ServiceError::Url { .. })), "{bad}");
        }
    }
}
