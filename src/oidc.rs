//! OIDC identity tokens for keyless signing. The token itself is pure data here: parsed from
//! its compact JWT form, its claims read, and refused before any request when it has expired,
//! is not yet valid, or is not for Sigstore's audience. Its signature is Fulcio's to check
//! (sigil holds no issuer keys). Where the token comes from (a flag, `SIGSTORE_ID_TOKEN`,
//! GitHub Actions' token service) is the CLI's edge, `cli::identity`.
//!
//! The raw token is a bearer credential: it is zeroized on drop, never printed (`Debug`
//! shows only its claims), and sent only to the Fulcio URL the signing configuration names.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use zeroize::Zeroizing;

/// The audience Fulcio accepts.
pub const SIGSTORE_AUDIENCE: &str = "sigstore";

/// Largest token accepted (GitHub's are ~1.3 KiB).
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// Clock skew tolerated on `nbf` and `iat` (seconds), as sigstore-python does.
const LEEWAY_SECONDS: i64 = 60;

/// Why a token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWT, or its claims are not JSON of the expected shape.
    #[error("not an OIDC identity token: {0}")]
    Malformed(String),
    /// `exp` is past.
    #[error("the identity token expired at {expired} (now {now})")]
    Expired {
        /// `exp`, RFC 3339.
        expired: String,
        /// The clock, RFC 3339.
        now: String,
    },
    /// `nbf` (or `iat`) is in the future.
    #[error("the identity token is not valid before {0}")]
    NotYetValid(String),
    /// `aud` does not name the audience.
    #[error("the identity token is for audience {found:?}, not {wanted:?}")]
    WrongAudience {
        /// What the token names.
        found: Vec<String>,
        /// What was required.
        wanted: String,
    },
}

/// The claims sigil reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the OIDC issuer URL (Fulcio's certificate carries it).
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, when the issuer states one and marks it verified.
    pub email: Option<String>,
    /// `aud`, as a list.
    pub audiences: Vec<String>,
    /// `exp` (Unix seconds).
    pub expires: i64,
    /// `nbf` (Unix seconds).
    pub not_before: Option<i64>,
    /// `iat` (Unix seconds).
    pub issued_at: Option<i64>,
}

/// A parsed identity token.
pub struct IdentityToken {
    raw: Zeroizing<String>,
    claims: Claims,
}

impl std::fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityToken").field("claims", &self.claims).field("raw", &"<redacted>").finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(serde::Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
}

impl IdentityToken {
    /// Parses a compact JWT (`header.claims.signature`; surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<IdentityToken, TokenError> {
        let raw = Zeroizing::new(text.trim().to_owned());
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let parts: Vec<&str> = raw.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err(TokenError::Malformed("a JWT has three dot-separated parts".into()));
        };
        if header.is_empty() || signature.is_empty() {
            return Err(TokenError::Malformed("empty header or signature".into()));
        }
        let decoded = B64URL
            .decode(claims.trim_end_matches('='))
            .map_err(|e| TokenError::Malformed(format!("claims are not base64url: {e}")))?;
        crate::json::reject_ambiguous_keys(&decoded).map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        let c: RawClaims =
            serde_json::from_slice(&decoded).map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        if c.iss.is_empty() || c.sub.is_empty() {
            return Err(TokenError::Malformed("empty iss or sub claim".into()));
        }
        // Fulcio takes an email only when the issuer vouches for it (bool, or the string "true"
        // some issuers send).
        let verified = matches!(&c.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&c.email_verified, Some(serde_json::Value::String(s)) if s == "true");
        let audiences = match c.aud {
            Audience::One(a) => vec![a],
            Audience::Many(v) => v,
        };
        let claims = Claims {
            issuer: c.iss,
            subject: c.sub,
            email: c.email.filter(|e| verified && !e.is_empty()),
            audiences,
            expires: c.exp,
            not_before: c.nbf,
            issued_at: c.iat,
        };
        Ok(IdentityToken { raw, claims })
    }

    /// Refuses a token that has expired, is not valid yet, or is not for `audience`.
    pub fn check(&self, now_unix: i64, audience: &str) -> Result<(), TokenError> {
        let c = &self.claims;
        if !c.audiences.iter().any(|a| a == audience) {
            return Err(TokenError::WrongAudience { found: c.audiences.clone(), wanted: audience.to_owned() });
        }
        if c.expires <= now_unix {
            return Err(TokenError::Expired { expired: rfc3339(c.expires), now: rfc3339(now_unix) });
        }
        for t in [c.not_before, c.issued_at].into_iter().flatten() {
            if t > now_unix + LEEWAY_SECONDS {
                return Err(TokenError::NotYetValid(rfc3339(t)));
            }
        }
        Ok(())
    }

    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// What Fulcio asks the key holder to sign as proof of possession and, for email
    /// issuers, what it writes in the certificate: the verified email, else `sub`
    /// (sigstore-go's `SubjectFromToken`).
    pub fn principal(&self) -> &str {
        self.claims.email.as_deref().unwrap_or(&self.claims.subject)
    }

    /// The token itself, for the `Authorization`/credentials field of the Fulcio request only.
    pub fn bearer(&self) -> &str {
        &self.raw
    }
}

/// Asks GitHub Actions' token service (`ACTIONS_ID_TOKEN_REQUEST_URL`, authorised by
/// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`) for a token with audience `sigstore`. The request token
/// goes only to that URL.
pub async fn github_actions_token(
    service: &crate::http::Service,
    request_url: &str,
    request_token: &str,
) -> Result<String, String> {
    let sep = if request_url.contains('?') { '&' } else { '?' };
    let url = service.url(&format!("{request_url}{sep}audience={SIGSTORE_AUDIENCE}")).map_err(|e| e.to_string())?;
    let auth = Zeroizing::new(format!("bearer {request_token}"));
    let reply = service
        .get(&url, &[("Authorization", auth.as_str()), ("Accept", "application/json")], MAX_TOKEN_BYTES + 1024)
        .await
        .map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("GitHub Actions' token service answered HTTP {}: {}", reply.status, reply.excerpt()));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        value: String,
    }
    let a: Answer = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("GitHub Actions' token service answered something else than a token: {e}"))?;
    Ok(a.value)
}

fn rfc3339(t: i64) -> String {
    crate::predicates::rfc3339_utc(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &serde_json::Value) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", B64URL.encode(serde_json::to_vec(claims).unwrap()))
    }

    fn claims(exp: i64) -> serde_json::Value {
        serde_json::json!({"iss": "http://127.0.0.1:1", "sub": "s", "aud": "sigstore", "exp": exp, "iat": 100,
            "email": "alice@example.com", "email_verified": true})
    }

    #[test]
    fn identity_token_claims_are_read_and_checked() {
        let t = IdentityToken::parse(&jwt(&claims(1000))).unwrap();
        assert_eq!(t.principal(), "alice@example.com");
        assert_eq!(t.claims().issuer, "http://127.0.0.1:1");
        t.check(999, SIGSTORE_AUDIENCE).unwrap();
        assert!(matches!(t.check(1000, SIGSTORE_AUDIENCE), Err(TokenError::Expired { .. })));
        assert!(matches!(t.check(10, SIGSTORE_AUDIENCE), Err(TokenError::NotYetValid(_))));
        assert!(matches!(t.check(500, "other"), Err(TokenError::WrongAudience { .. })));
        assert!(!format!("{t:?}").contains("eyJ"), "Debug must not show the token");
    }

    #[test]
    fn identity_token_without_verified_email_proves_its_subject() {
        let mut c = claims(1000);
        c["email_verified"] = serde_json::json!(false);
        c["aud"] = serde_json::json!(["x", "sigstore"]);
        let t = IdentityToken::parse(&jwt(&c)).unwrap();
        assert_eq!(t.principal(), "s");
        t.check(500, SIGSTORE_AUDIENCE).unwrap();
    }

    #[test]
    fn malformed_identity_tokens_are_refused() {
        for bad in [
            "".to_string(),
            "a.b".to_string(),
            "a.!!!.c".to_string(),
            format!("a.{}.c", B64URL.encode(b"[]")),
            format!("a.{}.c", B64URL.encode(br#"{"iss":"i","sub":"s","aud":"sigstore","exp":1,"exp":2}"#)),
            format!("a.{}.c", B64URL.encode(br#"{"iss":"","sub":"s","aud":"sigstore","exp":1}"#)),
            format!(".{}.c", B64URL.encode(br#"{"iss":"i","sub":"s","aud":"sigstore","exp":1}"#)),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(matches!(IdentityToken::parse(&bad), Err(TokenError::Malformed(_))), "{bad:.40}");
        }
    }
}
