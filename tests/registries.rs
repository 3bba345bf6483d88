//! The two registries the harness starts (tests/common): both take a pushed image the same way,
//! and only refreg has the OCI 1.1 referrers API, so bundle tests on both cover the API and
//! the tag-schema fallback.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `GET url` accepting `accept`: (status, body), body capped at 64 KiB.
fn get(url: &str, accept: &str) -> (u16, Vec<u8>) {
    rt().block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        let resp = client.get(url).header("Accept", accept).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_else(|e| panic!("GET {url} body: {e}"));
        assert!(body.len() <= 64 << 10, "GET {url}: body of {} bytes", body.len());
        (status, body.to_vec())
    })
}

#[test]
fn referrers_api_only_on_refreg() {
    for kind in RegistryKind::ALL {
        let reg = Registry::start_kind(kind);
        let store = reg.store("smoke/image");
        let digest = rt().block_on(push_image(&store, Some("v1"), "smoke", "amd64"));
        let (status, body) = get(&format!("http://{}/v2/smoke/image/referrers/{digest}", reg.host()), OCI_INDEX);
        match kind {
            RegistryKind::Referrers => {
                assert_eq!(status, 200, "{kind:?}: {}", String::from_utf8_lossy(&body));
                let index: Value = serde_json::from_slice(&body).expect("referrers response is JSON");
                assert_eq!(index["schemaVersion"], 2, "{index}");
                assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
                assert_eq!(index["manifests"], serde_json::json!([]), "{index}");
            }
            RegistryKind::Distribution => assert_eq!(status, 404, "{kind:?}: {}", String::from_utf8_lossy(&body)),
        }
    }
}

#[test]
fn request_log_counts_on_both_registries() {
    for kind in RegistryKind::ALL {
        let reg = Registry::start_kind(kind);
        let store = reg.store("smoke/count");
        rt().block_on(push_image(&store, Some("v1"), "count", "amd64"));
        let mark = reg.mark();
        let (status, _) = get(&format!("http://{}/v2/smoke/count/manifests/v1", reg.host()), OCI_MANIFEST);
        assert_eq!(status, 200, "{kind:?}");
        let (status, _) = get(&format!("http://{}/v2/smoke/count/manifests/missing", reg.host()), OCI_MANIFEST);
        assert_eq!(status, 404, "{kind:?}");
        assert_eq!(
            reg.requests_since(mark),
            ["GET /v2/smoke/count/manifests/v1", "GET /v2/smoke/count/manifests/missing"],
            "{kind:?}"
        );
        assert!(reg.request_count() >= 5, "{kind:?}: the push is counted too");
    }
}

#[test]
fn request_line_reads_both_log_formats() {
    let distribution = r#"127.0.0.1 - - [28/Nov/2026:10:47:44 +0000] "PUT /v2/a/blobs/uploads/u1?_state=x&digest=sha256:00 HTTP/1.1" 201 0 "" "curl/7.88.1""#;
    assert_eq!(request_line(distribution).as_deref(), Some("PUT /v2/a/blobs/uploads/u1"));
    let refreg = "2026/11/28 10:50:10 HEAD /v2/a/manifests/x 404 NAME_UNKNOWN Unknown name";
    assert_eq!(request_line(refreg).as_deref(), Some("HEAD /v2/a/manifests/x"));
    assert_eq!(request_line("2026/11/28 10:50:10 listening on 127.0.0.1:5000"), None);
    assert_eq!(request_line(r#"time="x" level=warn msg="GET is fine" http.request.method=GET"#), None);
}
