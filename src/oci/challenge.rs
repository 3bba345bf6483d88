//! The registry token protocol's two documents, parsed: the `WWW-Authenticate` challenge of a
//! `401` (RFC 7235: `Bearer realm="…",service="…",scope="…"`, or `Basic realm="…"`) and the
//! token service's JSON answer (`token` or `access_token`).
//!
//! Pure: no network. The registry client ([`super::registry`]) decides what to do with a
//! challenge (whether a realm may receive credentials) and does the token request itself,
//! bounded in size and time. A realm is only ever an absolute `http`/`https` URL here; every
//! token handed on is a valid HTTP header value (visible ASCII), so attaching it cannot fail.

use reqwest::Url;
use serde::Deserialize;

/// Largest `WWW-Authenticate` value parsed (registries send a few hundred bytes).
pub const MAX_CHALLENGE_BYTES: usize = 8 << 10;
/// Largest token-service answer read (a token response is a few KiB).
pub const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

/// What a registry's `401` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// A bearer token from a token service.
    Bearer(BearerChallenge),
    /// Basic credentials, sent to the registry itself.
    Basic,
}

/// A `Bearer` challenge: where to ask for a token, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// The token service (`realm`), an absolute http(s) URL.
    pub realm: Url,
    /// The `service` parameter to pass on, when given.
    pub service: Option<String>,
    /// The `scope` the registry named, when given.
    pub scope: Option<String>,
}

/// Why a challenge or a token answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// Not RFC 7235 syntax.
    #[error("malformed WWW-Authenticate challenge: {0}")]
    Syntax(&'static str),
    /// Longer than [`MAX_CHALLENGE_BYTES`].
    #[error("WWW-Authenticate challenge longer than {MAX_CHALLENGE_BYTES} bytes")]
    TooLong,
    /// A Bearer challenge without a realm.
    #[error("Bearer challenge without a realm")]
    NoRealm,
    /// A realm that is not an absolute http(s) URL.
    #[error("token realm {0:?} is not an absolute http(s) URL")]
    BadRealm(String),
    /// A parameter given twice in one challenge (RFC 7235 §2.1 forbids it).
    #[error("challenge parameter {0:?} given twice")]
    DuplicateParameter(String),
    /// Neither Bearer nor Basic.
    #[error("registry asks for an unsupported authentication scheme ({0})")]
    Unsupported(String),
    /// The token answer is not the expected JSON.
    #[error("token service answer is not a token: {0}")]
    BadToken(String),
}

/// One challenge as written: its scheme and parameters (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 7235 `token68` characters (besides trailing `=`).
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    /// Skips whitespace and list separators (RFC 7230 §7 allows empty list elements).
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> &str {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        // tchar is ASCII: the slice is UTF-8.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }
    /// Whether a `token BWS "="` (an auth-param, not token68 padding) starts here.
    fn at_param(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if self.s.get(j) != Some(&b'=') {
            return false;
        }
        // `abc=` followed by the end, a comma or more `=` is token68 padding.
        j += 1;
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        !matches!(self.s.get(j), None | Some(b',' | b'='))
    }
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        // Opening quote already seen.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ChallengeError::Syntax("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 => out.push(b),
                        _ => return Err(ChallengeError::Syntax("bad escape in quoted string")),
                    }
                    self.i += 1;
                }
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80 => {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err(ChallengeError::Syntax("control character in quoted string")),
            }
        }
        String::from_utf8(out).map_err(|_| ChallengeError::Syntax("quoted string is not UTF-8"))
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235 §4.1).
fn parse_challenges(value: &str) -> Result<Vec<RawChallenge>, ChallengeError> {
    if value.len() > MAX_CHALLENGE_BYTES {
        return Err(ChallengeError::TooLong);
    }
    let mut c = Cursor { s: value.as_bytes(), i: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ws_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token().to_ascii_lowercase();
        if scheme.is_empty() {
            return Err(ChallengeError::Syntax("expected an authentication scheme"));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        match c.peek() {
            None | Some(b',') => {}
            Some(b' ' | b'\t') => {
                c.skip_ws();
                if c.at_param() {
                    // 1#auth-param, until the next element is not a parameter.
                    loop {
                        let name = c.token().to_ascii_lowercase();
                        c.skip_ws();
                        // at_param guaranteed the '='.
                        c.i += 1;
                        c.skip_ws();
                        let v = match c.peek() {
                            Some(b'"') => c.quoted()?,
                            _ => {
                                let t = c.token();
                                if t.is_empty() {
                                    return Err(ChallengeError::Syntax("expected a parameter value"));
                                }
                                t.to_owned()
                            }
                        };
                        if params.iter().any(|(n, _)| *n == name) {
                            return Err(ChallengeError::DuplicateParameter(name));
                        }
                        params.push((name, v));
                        c.skip_ws();
                        match c.peek() {
                            None => break,
                            Some(b',') => {
                                c.skip_ws_commas();
                                if !c.at_param() {
                                    break;
                                }
                            }
                            Some(_) => return Err(ChallengeError::Syntax("expected ',' between parameters")),
                        }
                    }
                } else if c.peek().is_some_and(is_token68) {
                    // token68: kept out of `params`; no scheme sigil speaks uses it.
                    while c.peek().is_some_and(is_token68) {
                        c.i += 1;
                    }
                    while c.peek() == Some(b'=') {
                        c.i += 1;
                    }
                    c.skip_ws();
                    if !matches!(c.peek(), None | Some(b',')) {
                        return Err(ChallengeError::Syntax("unexpected data after token68"));
                    }
                } else if !matches!(c.peek(), None | Some(b',')) {
                    return Err(ChallengeError::Syntax("unexpected character after the scheme"));
                }
            }
            Some(_) => return Err(ChallengeError::Syntax("unexpected character in the scheme")),
        }
        out.push(RawChallenge { scheme, params });
    }
    if out.is_empty() {
        return Err(ChallengeError::Syntax("no challenge"));
    }
    Ok(out)
}

impl Challenge {
    /// The challenge to answer from a `401`'s `WWW-Authenticate` values: the first Bearer
    /// challenge, else Basic. A malformed Bearer challenge is an error, never skipped.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Challenge, ChallengeError> {
        let mut all = Vec::new();
        for v in values {
            all.extend(parse_challenges(v)?);
        }
        if all.is_empty() {
            return Err(ChallengeError::Syntax("no challenge"));
        }
        if let Some(b) = all.iter().find(|c| c.scheme == "bearer") {
            let get = |k: &str| b.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let realm_text = get("realm").ok_or(ChallengeError::NoRealm)?;
            let realm = Url::parse(&realm_text).map_err(|_| ChallengeError::BadRealm(realm_text.clone()))?;
            if !matches!(realm.scheme(), "http" | "https") || realm.host_str().is_none() {
                return Err(ChallengeError::BadRealm(realm_text));
            }
            // Credentials in the URL would be sent on; a realm never needs them.
            if !realm.username().is_empty() || realm.password().is_some() {
                return Err(ChallengeError::BadRealm(realm_text));
            }
            return Ok(Challenge::Bearer(BearerChallenge { realm, service: get("service"), scope: get("scope") }));
        }
        if all.iter().any(|c| c.scheme == "basic") {
            return Ok(Challenge::Basic);
        }
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        Err(ChallengeError::Unsupported(schemes.join(", ")))
    }
}

/// A bearer token: visible ASCII only, so it is always a valid header value. Not printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a token service's JSON answer: `token`, else `access_token` (the OAuth2 name).
    pub fn from_response(body: &[u8]) -> Result<Token, ChallengeError> {
        #[derive(Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let a: Answer = serde_json::from_slice(body).map_err(|e| ChallengeError::BadToken(e.to_string()))?;
        let t = match (a.token, a.access_token) {
            (Some(t), _) if !t.is_empty() => t,
            (_, Some(t)) if !t.is_empty() => t,
            _ => return Err(ChallengeError::BadToken("no token or access_token".into())),
        };
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChallengeError::BadToken("the token has characters not allowed in an HTTP header".into()));
        }
        Ok(Token(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> BearerChallenge {
        match Challenge::parse([v]) {
            Ok(Challenge::Bearer(b)) => b,
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn docker_hub_challenge() {
        let b = bearer(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(b.realm.as_str(), "https://auth.docker.io/token");
        assert_eq!(b.service.as_deref(), Some("registry.docker.io"));
        // The comma inside the quoted scope does not start a new parameter.
        assert_eq!(b.scope.as_deref(), Some("repository:library/busybox:pull,push"));
    }

    #[test]
    fn scheme_and_names_are_case_insensitive_and_tokens_unquoted() {
        let b = bearer("bEaReR ReAlM=\"http://127.0.0.1:5001/t\" , SERVICE = reg");
        assert_eq!(b.realm.as_str(), "http://127.0.0.1:5001/t");
        assert_eq!(b.service.as_deref(), Some("reg"));
        assert_eq!(b.scope, None);
    }

    #[test]
    fn bearer_wins_over_basic_in_any_order() {
        let v = r#"Basic realm="r", Bearer realm="https://t.example/token",service="s""#;
        assert!(matches!(Challenge::parse([v]), Ok(Challenge::Bearer(_))));
        assert!(matches!(
            Challenge::parse([r#"Basic realm="x""#, r#"Bearer realm="https://t/""#]),
            Ok(Challenge::Bearer(_))
        ));
        assert_eq!(Challenge::parse([r#"Basic realm="registry""#]), Ok(Challenge::Basic));
        assert_eq!(Challenge::parse(["Basic"]), Ok(Challenge::Basic));
    }

    #[test]
    fn quoted_escapes() {
        let b = bearer(r#"Bearer realm="https://t.example/a\"b",service="x\\y""#);
        assert_eq!(b.service.as_deref(), Some("x\\y"));
        assert!(b.realm.as_str().starts_with("https://t.example/a"));
    }

    #[test]
    fn token68_challenges_are_skipped() {
        assert_eq!(Challenge::parse(["Negotiate abc==, Basic realm=\"r\""]), Ok(Challenge::Basic));
        assert!(matches!(Challenge::parse(["Negotiate"]), Err(ChallengeError::Unsupported(s)) if s == "negotiate"));
    }

    #[test]
    fn refusals() {
        use ChallengeError::*;
        let cases: &[(&str, ChallengeError)] = &[
            ("", Syntax("no challenge")),
            ("Bearer service=\"s\"", NoRealm),
            ("Bearer realm=\"/token\"", BadRealm("/token".into())),
            ("Bearer realm=\"ftp://h/token\"", BadRealm("ftp://h/token".into())),
            ("Bearer realm=\"https://u:p@h/token\"", BadRealm("https://u:p@h/token".into())),
            ("Bearer realm=\"https://h/\",realm=\"https://e/\"", DuplicateParameter("realm".into())),
            ("Bearer realm=\"https://h/", Syntax("unterminated quoted string")),
            ("Bearer realm=\"a\u{1}\"", Syntax("control character in quoted string")),
            // `realm=` alone is token68 padding, not a parameter.
            ("Bearer realm=", NoRealm),
            ("Bearer realm=,scope=\"x\"", Syntax("unexpected character in the scheme")),
            ("Bearer realm=\"https://h/\" service=\"s\"", Syntax("expected ',' between parameters")),
            ("\"Bearer\"", Syntax("expected an authentication scheme")),
        ];
        for (v, want) in cases {
            assert_eq!(Challenge::parse([*v]).as_ref(), Err(want), "{v:?}");
        }
        assert_eq!(Challenge::parse(["x".repeat(MAX_CHALLENGE_BYTES + 1).as_str()]), Err(TooLong));
    }

    #[test]
    fn token_answers() {
        assert_eq!(Token::from_response(br#"{"token":"abc.def"}"#).unwrap().as_str(), "abc.def");
        assert_eq!(Token::from_response(br#"{"access_token":"a","expires_in":300}"#).unwrap().as_str(), "a");
        // An empty `token` falls back to `access_token`.
        assert_eq!(Token::from_response(br#"{"token":"","access_token":"b"}"#).unwrap().as_str(), "b");
        for bad in
            [&br#"{}"#[..], br#"{"token":""}"#, br#"{"token":"a b"}"#, b"{\"token\":\"a\\nb\"}", b"not json", b""]
        {
            assert!(Token::from_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(!format!("{:?}", Token::from_response(br#"{"token":"secret"}"#).unwrap()).contains("secret"));
    }
}
