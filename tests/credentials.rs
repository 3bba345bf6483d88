//! Credentials go to the registry they belong to and nowhere else.
//!
//! A tiny HTTP server on loopback plays a registry that wants basic auth and redirects the
//! manifest to "another host" (`localhost` instead of `127.0.0.1`, a second server). The
//! second server must never see the `Authorization` header.

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
fn serve(listener: TcpListener, max: usize, respond: impl Fn(&Seen) -> String + Send + 'static) -> Arc<Mutex<Vec<Seen>>> {
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
        &["verify", "--allow-http-registry", "--timeout", "5", "--registry-username", "user", "--key", "sigil.pub", &image],
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
