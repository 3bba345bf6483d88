//! A tiny HTTP server on loopback plays registries and token services that a real one would
//! not: one that wants basic auth and redirects to "another host" (credentials must not
//! follow), ones that serve absurd sizes or never finish (reads must stop at the limit and the
//! deadline). The token exchange is also run against Debian's docker-registry with token
//! auth, the test playing its token service (ES256 tokens from a test key).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// Serves `max` connections (one request each) with `respond`, recording what it saw.
fn serve(
    listener: TcpListener,
    max: usize,
    respond: impl Fn(&Seen) -> String + Send + 'static,
) -> Arc<Mutex<Vec<Seen>>> {
    serve_maybe_tls(listener, None, max, respond)
}

/// [`serve`], over TLS when `tls` is given.
fn serve_maybe_tls(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    max: usize,
    respond: impl Fn(&Seen) -> String + Send + 'static,
) -> Arc<Mutex<Vec<Seen>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(stream) = stream else { break };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            match &tls {
                None => answer(stream, &respond, &log),
                Some(cfg) => {
                    let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else { continue };
                    answer(rustls::StreamOwned::new(conn, stream), &respond, &log)
                }
            }
        }
    });
    seen
}

/// Reads one request's line and headers from `stream`, answers it with `respond`.
fn answer(mut stream: impl Read + Write, respond: &impl Fn(&Seen) -> String, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    drop(reader);
    let s = Seen { method, path, authorization };
    let resp = respond(&s);
    log.lock().unwrap().push(s);
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
}

#[test]
fn credentials_are_not_forwarded_on_cross_host_redirect() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
    // "user:secret"
    let good = "Basic dXNlcjpzZWNyZXQ=".to_string();
    let seen_a = serve(a, 20, move |s| {
        let unauthorized = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
        if s.authorization.as_deref() != Some(good.as_str()) {
            return unauthorized;
        }
        if s.path == "/v2/" {
            return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into();
        }
        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{pb}{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", s.path)
    });
    let seen_b = serve(b, 5, |_| "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into());

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("127.0.0.1:{pa}/team/app:v1");
    let out = sigil_env(
        d,
        &[
            "verify",
            "--allow-http-registry",
            "--timeout",
            "5",
            "--registry-username",
            "user",
            "--key",
            "sigil.pub",
            &image,
        ],
        &[("SIGIL_REGISTRY_PASSWORD", "secret")],
    );
    // The redirect target says 404: the image is not found. What matters is who saw what.
    assert_code(&out, 11);
    let a_seen = seen_a.lock().unwrap().clone();
    let b_seen = seen_b.lock().unwrap().clone();
    assert!(a_seen.iter().any(|s| s.authorization.is_some()), "the registry got credentials: {a_seen:?}");
    assert!(!b_seen.is_empty(), "the redirect was followed: {a_seen:?}");
    assert!(b_seen.iter().all(|s| s.authorization.is_none()), "credentials leaked to another host: {b_seen:?}");
    // The password never appears on stdout or stderr.
    assert!(!stderr(&out).contains("secret") && !stdout(&out).contains("secret"));
}

#[test]
fn credential_helper_and_docker_config_auths() {
    // "user:secret"
    let good = "Basic dXNlcjpzZWNyZXQ=".to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    for mode in ["helper", "auths"] {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let pa = a.local_addr().unwrap().port();
        let want = good.clone();
        let seen = serve(a, 20, move |s| {
            if s.authorization.as_deref() != Some(want.as_str()) {
                return "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into();
            }
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        });
        let cfg = d.join(format!("docker-{mode}"));
        std::fs::create_dir_all(&cfg).unwrap();
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let host = format!("127.0.0.1:{pa}");
        let config = if mode == "helper" {
            let helper = bin.join("docker-credential-sigiltest");
            std::fs::write(&helper, "#!/bin/sh\nread host\necho \"{\\\"ServerURL\\\":\\\"$host\\\",\\\"Username\\\":\\\"user\\\",\\\"Secret\\\":\\\"secret\\\"}\"\n").unwrap();
            std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            format!(r#"{{"credHelpers":{{"{host}":"sigiltest"}}}}"#)
        } else {
            format!(r#"{{"auths":{{"{host}":{{"auth":"dXNlcjpzZWNyZXQ="}}}}}}"#)
        };
        std::fs::write(cfg.join("config.json"), config).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let image = format!("{host}/team/app:v1");
        let out = sigil_env(
            d,
            &["verify", "--allow-http-registry", "--timeout", "5", "--key", "sigil.pub", &image],
            &[("DOCKER_CONFIG", cfg.to_str().unwrap()), ("PATH", &path)],
        );
        // Authenticated, then 404: image not found (not an auth failure).
        assert_code(&out, 11);
        assert!(
            seen.lock().unwrap().iter().any(|s| s.authorization.as_deref() == Some(good.as_str())),
            "{mode}: credentials used"
        );
    }
}

#[test]
fn oversized_manifest_is_refused_without_reading_it_all() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let pa = a.local_addr().unwrap().port();
    // Claims 64 MiB and streams junk; sigil must stop at its 4 MiB manifest limit.
    std::thread::spawn(move || {
        for stream in a.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n");
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..64 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let out = sigil(
        d,
        &[
            "verify",
            "--allow-http-registry",
            "--timeout",
            "10",
            "--key",
            "sigil.pub",
            &format!("127.0.0.1:{pa}/big/app:v1"),
        ],
    );
    assert_code(&out, 14);
    assert!(stderr(&out).contains("larger than the limit"), "{}", stderr(&out));
}

/// A token service for `Registry::start_token_auth`: a self-signed P-256 certificate (the
/// registry's `rootcertbundle`) and its key, issuing tokens for whatever scope is asked.
struct TokenIssuer {
    cert: std::path::PathBuf,
    key: p256::ecdsa::SigningKey,
    x5c: String,
}

impl TokenIssuer {
    fn new(dir: &std::path::Path) -> TokenIssuer {
        let o = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .args(["-keyout", "token.key", "-out", "token.pem", "-days", "2", "-subj", "/CN=sigil-token-issuer"])
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        use p256::pkcs8::DecodePrivateKey;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.join("token.key")).unwrap())
            .expect("token key");
        let pem = std::fs::read_to_string(dir.join("token.pem")).unwrap();
        let x5c: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        TokenIssuer { cert: dir.join("token.pem"), key, x5c }
    }

    /// A JWT for the `scope` query parameter of a token request path.
    fn token_for(&self, path: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
        use base64::Engine as _;
        use p256::ecdsa::signature::Signer as _;
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut access = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k == "scope" {
                let scope = percent_decode(v);
                let parts: Vec<&str> = scope.split(':').collect();
                if let [kind, name, actions] = parts.as_slice() {
                    let actions: Vec<&str> = actions.split(',').collect();
                    access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
                }
            }
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": "sigil-test-issuer", "sub": "user", "aud": "sigil-test", "exp": now + 600,
            "nbf": now - 60, "iat": now - 60, "jti": format!("{now}"), "access": access,
        });
        let signed = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let sig: p256::ecdsa::Signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", B64URL.encode(sig.to_bytes()))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// "user:secret"
const GOOD_BASIC: &str = "Basic dXNlcjpzZWNyZXQ=";

#[test]
fn token_auth_registry_sign_and_verify() {
    // see: issue 8 §3 — sigil's own token exchange serves reads and pushes.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Arc::new(TokenIssuer::new(d));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://127.0.0.1:{}/token", listener.local_addr().unwrap().port());
    let iss = issuer.clone();
    let seen = serve(listener, 100, move |s| {
        if s.authorization.as_deref() != Some(GOOD_BASIC) {
            return "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into();
        }
        let body = serde_json::json!({"token": iss.token_for(&s.path), "expires_in": 600}).to_string();
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    });
    let (reg, _) = Registry::start_token_auth(&realm, &issuer.cert, false);
    let opts = sigil::oci::registry::RegistryOptions {
        transport: sigil::oci::registry::Transport::InsecureHttpAllowed,
        ..Default::default()
    };
    let store = sigil::oci::Backend::Registry(sigil::oci::registry::RegistryStore::new(
        sigil::oci::registry::Connection::new(&opts).unwrap(),
        &sigil::oci::auth::Credentials::Basic { username: "user".into(), password: "secret".to_owned().into() },
        &reg.host(),
        "team/app",
        std::time::Duration::from_secs(30),
    ));
    rt().block_on(push_image(&store, Some("v1"), "token", "amd64"));
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("{}/team/app:v1", reg.host());
    let env = [("SIGIL_REGISTRY_PASSWORD", "secret"), ("SIGIL_PASSWORD", PASSWORD)];
    let flags = ["--allow-http-registry", "--timeout", "10", "--registry-username", "user"];
    let run = |cmd: &str, key: &str| {
        let mut args = vec![cmd];
        args.extend(flags);
        args.extend(["--key", key, &image]);
        sigil_env(d, &args, &env)
    };
    let out = run("sign", "sigil.key");
    assert_code(&out, 0);
    let out = run("verify", "sigil.pub");
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("secret"));
    let scopes: Vec<String> = seen.lock().unwrap().iter().map(|s| percent_decode(&s.path)).collect();
    assert!(scopes.iter().any(|p| p.contains("scope=repository:team/app:pull,push")), "{scopes:?}");
    assert!(scopes.iter().any(|p| p.contains("scope=repository:team/app:pull") && !p.contains("push")), "{scopes:?}");
    assert!(scopes.iter().all(|p| p.contains("service=sigil-test")), "{scopes:?}");
    // Without the password the token service refuses: access refused, exit 14.
    let out = sigil(d, &["verify", "--allow-http-registry", "--timeout", "10", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

#[test]
fn token_realm_over_http_is_refused_for_https_registry() {
    // see: issue 8 §3
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = TokenIssuer::new(d);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://127.0.0.1:{}/token", listener.local_addr().unwrap().port());
    let seen = serve(listener, 10, |_| "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into());
    let (reg, ca) = Registry::start_token_auth(&realm, &issuer.cert, true);
    let ca = ca.unwrap();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("{}/team/app:v1", reg.host());
    // verify: could not check (14); sign: a failed write (1).
    for (cmd, key, code) in [("verify", "sigil.pub", 14), ("sign", "sigil.key", 1)] {
        let out = sigil_env(
            d,
            &[cmd, "--registry-cacert", ca.to_str().unwrap(), "--registry-username", "user", "--key", key, &image],
            &[("SIGIL_REGISTRY_PASSWORD", "secret"), ("SIGIL_PASSWORD", PASSWORD)],
        );
        assert_code(&out, code);
        let err = stderr(&out);
        assert!(err.contains(&realm) && err.contains("plain-HTTP token service"), "{cmd}: {err}");
        assert!(err.contains("https://"), "{cmd}: says what to do: {err}");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(seen.lock().unwrap().is_empty(), "the plain-HTTP realm was contacted: {:?}", seen.lock().unwrap());
}

/// A registry that answers everything with a Bearer challenge naming `realm`.
fn challenging_registry(realm: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    serve(l, 20, move |_| {
        format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    });
    port
}

/// A token service that sends `head` and then `body` forever-ish: `chunk` bytes every
/// `pause`, at most `total` bytes, stopping when the reader goes away.
fn endless_token_service(head: &'static str, chunk: usize, pause: std::time::Duration, total: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://127.0.0.1:{}/token", l.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in l.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut buf);
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(b"{\"token\":\"");
                let data = vec![b'a'; chunk];
                let mut sent = 0;
                while sent < total && stream.write_all(&data).is_ok() {
                    sent += chunk;
                    std::thread::sleep(pause);
                }
            });
        }
    });
    realm
}

/// Runs sigil under an address-space limit (KiB), timed.
fn sigil_limited(cwd: &std::path::Path, args: &[&str], vmem_kib: u64) -> (std::process::Output, std::time::Duration) {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {vmem_kib} && exec \"$0\" \"$@\""))
        .arg(sigil_bin())
        .args(legacy_unless_named(args));
    isolate(&mut c, cwd, &[]);
    let start = std::time::Instant::now();
    let out = c.stdin(std::process::Stdio::null()).output().expect("run sigil under ulimit");
    (out, start.elapsed())
}

#[test]
fn token_response_is_bounded() {
    // see: issue 8 §3 — a 256 MiB token answer once took 1.3 GB of memory.
    let realm = endless_token_service(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        1 << 20,
        std::time::Duration::ZERO,
        256 << 20,
    );
    let port = challenging_registry(realm);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let args = ["verify", "--allow-http-registry", "--timeout", "30", "--key", "sigil.pub", &image];
    let (out, took) = sigil_limited(d, &args, 256 << 10);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("token response is larger than the limit of 1048576 bytes"), "{}", stderr(&out));
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    eprintln!("256 MiB token answer refused in {took:?} under a 256 MiB address-space limit");
}

#[test]
fn token_response_time_is_bounded() {
    // see: issue 8 §3 — a token service that trickles a byte a second never finishes.
    let realm = endless_token_service(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        1,
        std::time::Duration::from_millis(500),
        usize::MAX,
    );
    let port = challenging_registry(realm);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let start = std::time::Instant::now();
    let out = sigil(d, &["verify", "--allow-http-registry", "--timeout", "3", "--key", "sigil.pub", &image]);
    let took = start.elapsed();
    assert_code(&out, 14);
    assert!(stderr(&out).contains("timed out after 3 s"), "{}", stderr(&out));
    assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
    eprintln!("never-ending token answer cut off after {took:?} (--timeout 3)");
}

/// A TLS server configuration for the test CA's 127.0.0.1 certificate, and the CA's path.
fn test_tls() -> (Arc<rustls::ServerConfig>, std::path::PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ((cert, key), ca) = test_pki();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (Arc::new(cfg), ca)
}

/// A registry that changes its mind between challenges, as issue 8 §3 describes: its first
/// `/v2/` ping asks for Basic, later ones for a token from `realm`. Reads with the right basic
/// credentials see one image (`team/app:v1`, no signatures); every write, even with them,
/// is answered with the Bearer challenge.
fn switching_registry(tls: Option<Arc<rustls::ServerConfig>>, realm: String) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let pinged = std::sync::atomic::AtomicBool::new(false);
    let seen = serve_maybe_tls(l, tls, 40, move |s| {
        let basic = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
        let bearer = format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if s.path == "/v2/" {
            return if pinged.swap(true, std::sync::atomic::Ordering::SeqCst) { bearer } else { basic };
        }
        if s.authorization.as_deref() != Some(GOOD_BASIC) {
            return basic;
        }
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/v2/team/app/manifests/v1") => {
                let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            }
            ("GET", _) => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            _ => bearer,
        }
    });
    (port, seen)
}

#[test]
fn basic_challenge_then_bearer_http_realm_is_never_followed_on_write() {
    // see: issue 8 §3 — oci-client pinged again before pushing and sent the Basic credentials
    // to the plain-HTTP realm it was then given.
    let realm_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://127.0.0.1:{}/token", realm_listener.local_addr().unwrap().port());
    let realm_seen = serve(realm_listener, 10, |_| {
        let body = r#"{"token":"stolen"}"#;
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    });
    let (tls, ca) = test_tls();
    let (port, seen) = switching_registry(Some(tls), realm.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let out = sigil_env(
        d,
        &[
            "sign",
            "--registry-cacert",
            ca.to_str().unwrap(),
            "--timeout",
            "10",
            "--registry-username",
            "user",
            "--key",
            "sigil.key",
            &image,
        ],
        &[("SIGIL_REGISTRY_PASSWORD", "secret"), ("SIGIL_PASSWORD", PASSWORD)],
    );
    let err = stderr(&out);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        realm_seen.lock().unwrap().is_empty(),
        "the plain-HTTP realm was contacted: {:?}",
        realm_seen.lock().unwrap()
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_code(&out, 1);
    assert!(err.contains(&realm) && err.contains("plain-HTTP token service"), "{err}");
    assert!(!err.contains("secret") && !stdout(&out).contains("secret"));
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|s| s.method == "POST"), "the write was tried: {seen:?}");
    // Writes are not preceded by a ping: a registry's answer to `/v2/` decides nothing.
    assert!(seen.iter().all(|s| s.path != "/v2/"), "{seen:?}");
}

#[test]
fn token_with_control_character_is_refused_on_write_without_panic() {
    // see: issue 8 §3 — oci-client panicked on a token that is not a header value.
    let realm_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://127.0.0.1:{}/token", realm_listener.local_addr().unwrap().port());
    let realm_seen = serve(realm_listener, 10, |_| {
        let body = "{\"token\":\"a\\nb\"}";
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    });
    // Plain HTTP throughout (--allow-http-registry), so the realm itself is acceptable.
    let (port, _seen) = switching_registry(None, realm);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = format!("127.0.0.1:{port}/team/app:v1");
    let out = sigil_env(
        d,
        &[
            "sign",
            "--allow-http-registry",
            "--timeout",
            "10",
            "--registry-username",
            "user",
            "--key",
            "sigil.key",
            &image,
        ],
        &[("SIGIL_REGISTRY_PASSWORD", "secret"), ("SIGIL_PASSWORD", PASSWORD)],
    );
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(code(&out), 1 | 14), "exit {}: {err}", code(&out));
    assert!(err.contains("not allowed in an HTTP header"), "{err}");
    assert!(!realm_seen.lock().unwrap().is_empty(), "the token service was asked");
}

/// A referrers index entry for a bundle referrer `d` (a made-up manifest digest).
fn bundle_entry(d: &str) -> String {
    format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":10,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}}"#
    )
}

fn index_page(entries: &[String], link: Option<String>) -> String {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    let link = link.map(|l| format!("Link: <{l}>; rel=\"next\"\r\n")).unwrap_or_default();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\n{link}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The referrers API pages its answer with `Link: <…>; rel="next"`: every page is read, so a
/// signature listed on page two is not missed; a `Link` leading to another host is not
/// followed (the registry's credentials would go with it) and the answer is "could not check".
// see: issue 9
#[test]
fn referrers_pages_are_all_read_and_links_elsewhere_are_not_followed() {
    let image = format!("sha256:{}", "1".repeat(64));
    let (a, b) = (format!("sha256:{}", "a".repeat(64)), format!("sha256:{}", "b".repeat(64)));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (img, ea, eb) = (image.clone(), bundle_entry(&a), bundle_entry(&b));
    let seen = serve(l, 20, move |s| {
        let first = format!("/v2/pg/app/referrers/{img}");
        if s.path == first {
            index_page(std::slice::from_ref(&ea), Some(format!("{first}?n=1&last=a")))
        } else if s.path.starts_with(&first) {
            index_page(std::slice::from_ref(&eb), None)
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
    });
    let verify = |port: u16| {
        let target = format!("127.0.0.1:{port}/pg/app@{image}");
        let args = ["verify", "--allow-http-registry", "--timeout", "5", "--format", "bundle", "--key", "sigil.pub"];
        sigil(d, &[&args[..], &[&target[..]]].concat())
    };
    let out = verify(port);
    // Both referrers were looked at (their manifests are missing here: could not check).
    assert_code(&out, 14);
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|s| s.path.clone()).collect();
    assert!(paths.iter().any(|p| p.ends_with("?n=1&last=a")), "page two read: {paths:?}");
    for m in [&a, &b] {
        assert!(paths.iter().any(|p| p == &format!("/v2/pg/app/manifests/{m}")), "referrer {m} fetched: {paths:?}");
    }

    // A Link to another host: not followed.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let (port, other_port) = (l.local_addr().unwrap().port(), other.local_addr().unwrap().port());
    let seen_other =
        serve(other, 5, |_| "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into());
    let (img, ea) = (image.clone(), bundle_entry(&a));
    serve(l, 20, move |s| {
        if s.path == format!("/v2/pg/app/referrers/{img}") {
            let next = format!("http://127.0.0.1:{other_port}/v2/pg/app/referrers/{img}?n=1");
            index_page(std::slice::from_ref(&ea), Some(next))
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
    });
    let out = verify(port);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("not followed"), "{}", stderr(&out));
    assert!(seen_other.lock().unwrap().is_empty(), "the other host was contacted");
}
