//! Registry credentials: flags, or the Docker config (`auths`, `credsStore`, `credHelpers`).
//!
//! Credentials are looked up for exactly one registry host and handed to the store bound to
//! that host. sigil's reads attach them only to requests for that host (reqwest drops
//! `Authorization` on a redirect to another host). One exception, inherent to the registry
//! token protocol: basic credentials are sent to the token service (`realm`) that the
//! registry's `WWW-Authenticate` challenge names, only over HTTPS unless the registry itself is
//! plain HTTP (see [`super::registry`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Credentials for one registry.
#[derive(Clone)]
pub enum Credentials {
    /// No credentials.
    Anonymous,
    /// Username and password (or identity token with an empty user).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Problems reading credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The Docker config is not JSON of the expected shape.
    #[error("cannot read Docker config {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed: {reason}")]
    Helper {
        /// Helper name.
        helper: String,
        /// What went wrong.
        reason: String,
    },
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys under which a registry may appear in `auths`.
fn candidate_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_owned(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        keys.push("https://index.docker.io/v1/".to_owned());
        keys.push("index.docker.io".to_owned());
    }
    keys
}

/// Finds credentials for `registry` in the Docker config. Missing config means anonymous.
pub fn from_docker_config(registry: &str) -> Result<Credentials, AuthError> {
    let Some(path) = config_path() else { return Ok(Credentials::Anonymous) };
    let bytes = {
        use std::io::Read;
        let Ok(f) = std::fs::File::open(&path) else { return Ok(Credentials::Anonymous) };
        let mut b = Zeroizing::new(Vec::new());
        f.take((1 << 20) + 1)
            .read_to_end(&mut b)
            .map_err(|e| AuthError::Config { path: path.display().to_string(), reason: e.to_string() })?;
        if b.len() > 1 << 20 {
            return Err(AuthError::Config { path: path.display().to_string(), reason: "larger than 1 MiB".into() });
        }
        b
    };
    let cfg: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|e| AuthError::Config { path: path.display().to_string(), reason: e.to_string() })?;
    lookup(&cfg, registry, &path.display().to_string())
}

fn lookup(cfg: &DockerConfig, registry: &str, path: &str) -> Result<Credentials, AuthError> {
    let keys = candidate_keys(registry);
    for k in &keys {
        if let Some(helper) = cfg.cred_helpers.get(k) {
            return run_helper(helper, registry);
        }
    }
    for k in &keys {
        if let Some(e) = cfg.auths.get(k) {
            if let Some(c) = entry_credentials(e, path)? {
                return Ok(c);
            }
        }
    }
    if let Some(store) = &cfg.creds_store {
        return run_helper(store, registry);
    }
    Ok(Credentials::Anonymous)
}

fn entry_credentials(e: &AuthEntry, path: &str) -> Result<Option<Credentials>, AuthError> {
    if let Some(tok) = &e.identitytoken {
        if !tok.is_empty() {
            return Ok(Some(Credentials::Basic { username: "<token>".into(), password: Zeroizing::new(tok.clone()) }));
        }
    }
    if let Some(a) = &e.auth {
        if !a.is_empty() {
            let raw = Zeroizing::new(B64.decode(a.as_bytes()).map_err(|_| AuthError::Config {
                path: path.to_owned(),
                reason: "an auths entry has invalid base64".into(),
            })?);
            let text = std::str::from_utf8(&raw).map_err(|_| AuthError::Config {
                path: path.to_owned(),
                reason: "an auths entry is not UTF-8".into(),
            })?;
            let (u, p) = text.split_once(':').ok_or_else(|| AuthError::Config {
                path: path.to_owned(),
                reason: "an auths entry is not user:password".into(),
            })?;
            return Ok(Some(Credentials::Basic { username: u.to_owned(), password: Zeroizing::new(p.to_owned()) }));
        }
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credentials::Basic { username: u.clone(), password: Zeroizing::new(p.clone()) }));
    }
    Ok(None)
}

/// How long a credential helper may take.
const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest helper answer read.
const MAX_HELPER_ANSWER: u64 = 1 << 20;

fn run_helper(helper: &str, registry: &str) -> Result<Credentials, AuthError> {
    use std::io::Read;
    let err = |reason: String| AuthError::Helper { helper: helper.to_owned(), reason };
    if !helper.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(err("helper name has unexpected characters".into()));
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        // The helper needs none of sigil's secrets.
        .env_remove("SIGIL_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("SIGIL_REGISTRY_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // Docker Hub is known to helpers by its legacy server URL, as docker passes it.
        let server = if registry == "docker.io" { "https://index.docker.io/v1/" } else { registry };
        stdin.write_all(server.as_bytes()).map_err(|e| err(e.to_string()))?;
    }
    // Read at most MAX_HELPER_ANSWER bytes on a thread; give up after HELPER_TIMEOUT.
    let Some(stdout) = child.stdout.take() else { return Err(err("no stdout".into())) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let r = stdout.take(MAX_HELPER_ANSWER + 1).read_to_end(&mut buf).map(|_| buf);
        let _ = tx.send(r);
    });
    let answer = match rx.recv_timeout(HELPER_TIMEOUT) {
        Ok(Ok(buf)) => buf,
        Ok(Err(e)) => return Err(err(e.to_string())),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!("no answer within {} s", HELPER_TIMEOUT.as_secs())));
        }
    };
    let status = child.wait().map_err(|e| err(e.to_string()))?;
    if answer.len() as u64 > MAX_HELPER_ANSWER {
        return Err(err("answer larger than 1 MiB".into()));
    }
    if !status.success() {
        // Helpers exit non-zero with "credentials not found": anonymous, as docker does.
        return Ok(Credentials::Anonymous);
    }
    let a: HelperAnswer = serde_json::from_slice(&answer).map_err(|e| err(format!("unreadable answer ({e})")))?;
    Ok(Credentials::Basic { username: a.username, password: Zeroizing::new(a.secret) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entry_base64() {
        let cfg: DockerConfig =
            serde_json::from_str(r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#).unwrap();
        match lookup(&cfg, "127.0.0.1:5000", "c").unwrap() {
            Credentials::Basic { username, password } => {
                assert_eq!(username, "user");
                assert_eq!(password.as_str(), "pass");
            }
            Credentials::Anonymous => panic!("expected credentials"),
        }
        assert!(matches!(lookup(&cfg, "other:5000", "c").unwrap(), Credentials::Anonymous));
    }

    #[test]
    fn bad_auth_entry_is_an_error() {
        let cfg: DockerConfig = serde_json::from_str(r#"{"auths":{"r":{"auth":"!!"}}}"#).unwrap();
        assert!(lookup(&cfg, "r", "c").is_err());
    }
}
