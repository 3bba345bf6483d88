//! A tiny HTTP server on loopback plays registries that a real one would not: one that wants
//! basic auth and redirects to "another host" (credentials must not follow), one that serves
//! absurd sizes (reads must stop at the limit).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

/// Serves `max` connections (one request each) with `respond`, recording what it saw.
fn serve(
    listener: TcpListener,
    max: usize,
    respond: impl Fn(&Seen) -> String + Send + 'static,
) -> Arc<Mutex<Vec<Seen>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
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
            let s = Seen { path, authorization };
            let resp = respond(&s);
            log.lock().unwrap().push(s);
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    seen
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
