//! Test harness: real registries on a free loopback port, started and stopped here (Debian's
//! docker-registry with a temporary storage folder, and refreg, go-containerregistry's in-memory
//! registry with the OCI 1.1 referrers API); small images built in-process; and helpers to run
//! the sigil and cosign binaries.
#![allow(dead_code)]

pub mod sigstack;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sigil::digest::Digest;
use sigil::oci::layout::LayoutStore;
use sigil::oci::manifest::{Descriptor, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use sigil::oci::registry::{self, RegistryOptions, RegistryStore, Transport};
use sigil::oci::{auth::Credentials, Backend, ManifestRef, Store};

pub const PASSWORD: &str = "correct horse battery staple";

/// Which registry implementation a test runs against: tests that must hold on both loop over
/// [`RegistryKind::ALL`] and start each with [`Registry::start_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// Debian's docker-registry (CNCF distribution 2.8): no referrers API (`GET
    /// /v2/<repo>/referrers/<digest>` is a 404), so OCI 1.1 referrers live in the tag schema.
    Distribution,
    /// refreg: go-containerregistry's registry with the OCI 1.1 referrers API, built from Debian
    /// unstable by scripts/sigstack/sigstack.sh (`setup-refreg`); in memory, plain HTTP only.
    Referrers,
}

impl RegistryKind {
    pub const ALL: [RegistryKind; 2] = [RegistryKind::Distribution, RegistryKind::Referrers];
}

/// A registry process serving on 127.0.0.1:port; killed on drop. Its request log (one line per
/// HTTP request, both kinds) is at `log`.
pub struct Registry {
    pub kind: RegistryKind,
    child: Child,
    pub port: u16,
    _storage: tempfile::TempDir,
    pub log: PathBuf,
}

/// A position in a registry's request log (see [`Registry::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct LogMark(u64);

fn registry_binary() -> PathBuf {
    for p in ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("docker-registry is not installed: run scripts/setup.sh (apt package docker-registry)");
}

/// refreg, linked at `.tools/refreg` by scripts/setup.sh (the binary lives in SIGSTACK_DIR,
/// default ~/.cache/sigstack). Missing fails the test.
pub fn refreg_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/refreg");
    assert!(p.exists(), "refreg is not installed at {} (or its target is gone): run scripts/setup.sh", p.display());
    p
}

/// A fresh test CA and a server certificate for 127.0.0.1 it issued: ((cert, key), CA cert).
pub fn test_pki() -> ((PathBuf, PathBuf), PathBuf) {
    let pki = tempfile::tempdir().expect("tempdir").keep();
    let run = |cmd: &str| {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let o =
            Command::new("openssl").current_dir(&pki).args(&args).output().expect("run openssl (apt package openssl)");
        assert!(o.status.success(), "openssl {cmd}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    run(&format!("req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=sigil-test-CA"));
    run(&format!("req {key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"));
    std::fs::write(
        pki.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf");
    ((pki.join("server.pem"), pki.join("server.key")), pki.join("ca.pem"))
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

impl Registry {
    /// A docker-registry (the kind most tests use).
    pub fn start() -> Registry {
        Self::start_with(None, "")
    }

    /// A registry of the given kind, plain HTTP, no auth.
    pub fn start_kind(kind: RegistryKind) -> Registry {
        match kind {
            RegistryKind::Distribution => Self::start(),
            RegistryKind::Referrers => Self::start_refreg(),
        }
    }

    /// refreg on a free loopback port. It cannot report a port it chose itself, so the port is
    /// picked here and another one tried when it was taken in the meantime.
    fn start_refreg() -> Registry {
        let bin = refreg_bin();
        Self::spawn_ready(RegistryKind::Referrers, "refreg", |port, _dir| {
            let mut c = Command::new(&bin);
            c.arg("-address").arg(format!("127.0.0.1:{port}"));
            c
        })
    }

    /// A registry that wants bearer tokens from `realm` (token auth: service `sigil-test`,
    /// issuer `sigil-test-issuer`, tokens signed by the key of the self-signed `token_cert`),
    /// over TLS when `tls` (then the test CA's path is returned too).
    pub fn start_token_auth(realm: &str, token_cert: &Path, tls: bool) -> (Registry, Option<PathBuf>) {
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: sigil-test\n    issuer: sigil-test-issuer\n    rootcertbundle: {}\n",
            token_cert.display()
        );
        if tls {
            let (pki, ca) = test_pki();
            (Self::start_with(Some(pki), &auth), Some(ca))
        } else {
            (Self::start_with(None, &auth), None)
        }
    }

    /// A registry serving TLS with a certificate for 127.0.0.1 issued by a fresh test CA.
    /// Returns the registry and the CA certificate's path.
    pub fn start_tls() -> (Registry, PathBuf) {
        let (pki, ca) = test_pki();
        (Self::start_with(Some(pki), ""), ca)
    }

    fn start_with(tls: Option<(PathBuf, PathBuf)>, extra_config: &str) -> Registry {
        Self::spawn_ready(RegistryKind::Distribution, "docker-registry", |port, dir| {
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{}",
                    dir.join("data").display(),
                    match &tls {
                        Some((cert, key)) => format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()),
                        None => String::new(),
                    }
                ) + extra_config,
            )
            .expect("write registry config");
            let mut c = Command::new(registry_binary());
            c.arg("serve").arg(&config);
            c
        })
    }

    /// Starts `command(port, folder)` on a free port with stdout and stderr in `folder/registry.log`
    /// until it answers `GET /v2/`; another port when it exits or does not answer in time.
    fn spawn_ready(kind: RegistryKind, name: &str, command: impl Fn(u16, &Path) -> Command) -> Registry {
        for _attempt in 0..5 {
            let storage = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let log = storage.path().join("registry.log");
            let logf = std::fs::File::create(&log).expect("log file");
            let child = command(port, storage.path())
                .stdin(Stdio::null())
                .stdout(Stdio::from(logf.try_clone().expect("clone log")))
                .stderr(Stdio::from(logf))
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
            let mut reg = Registry { kind, child, port, _storage: storage, log };
            if reg.wait_ready(Duration::from_secs(15)) {
                return reg;
            }
            // Port taken in the meantime, or a slow start: drop (kills it) and try another.
        }
        panic!("{name} did not start");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf) {
                    // A TLS registry answers plain HTTP with a 400, one with token auth with a
                    // 401: it is up all the same.
                    if buf[..n].starts_with(b"HTTP/1.0 200")
                        || buf[..n].starts_with(b"HTTP/1.1 200")
                        || buf[..n].starts_with(b"HTTP/1.0 400")
                        || buf[..n].starts_with(b"HTTP/1.0 401")
                        || buf[..n].starts_with(b"HTTP/1.1 401")
                    {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A store for `repo` on this registry.
    pub fn store(&self, repo: &str) -> Backend {
        self.store_with(repo, RegistryOptions { transport: Transport::InsecureHttpAllowed, ..Default::default() })
    }

    /// A store for `repo` with explicit connection options.
    pub fn store_with(&self, repo: &str, opts: RegistryOptions) -> Backend {
        Backend::Registry(RegistryStore::new(
            registry::Connection::new(&opts).expect("connection"),
            &Credentials::Anonymous,
            &self.host(),
            repo,
            Duration::from_secs(30),
        ))
    }

    /// Number of HTTP requests in the request log so far.
    pub fn request_count(&self) -> usize {
        self.requests_since(LogMark(0)).len()
    }

    /// The current end of the request log, once the registry has stopped writing to it: the
    /// log line of a request may land just after its response reached the client.
    pub fn mark(&self) -> LogMark {
        let len = || std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let (mut last, start) = (len(), Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = len();
            if now == last || start.elapsed() > Duration::from_secs(3) {
                return LogMark(now);
            }
            last = now;
        }
    }

    /// The HTTP requests logged after `since` (settled as in [`Registry::mark`]), as
    /// `METHOD /path` (query left out), in order. Usage, for the requests of one command:
    /// `let m = reg.mark(); run(...); let reqs = reg.requests_since(m);`
    pub fn requests_since(&self, since: LogMark) -> Vec<String> {
        let end = self.mark().0;
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let slice = bytes.get(since.0 as usize..(end as usize).min(bytes.len())).unwrap_or_default();
        String::from_utf8_lossy(slice).lines().filter_map(request_line).collect()
    }
}

/// `METHOD /v2/...` from one registry log line, or None when the line is not a request:
/// docker-registry's access log (`... "GET /v2/x/manifests/y HTTP/1.1" 200 ...`) and refreg's
/// (`2026/01/02 03:04:05 GET /v2/x/manifests/y [404 NAME_UNKNOWN ...]`).
pub fn request_line(line: &str) -> Option<String> {
    const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let method = w.trim_start_matches('"');
        if METHODS.contains(&method) && words.peek().is_some_and(|p| p.starts_with("/v2")) {
            let path = words.next().unwrap_or_default();
            return Some(format!("{method} {}", path.split('?').next().unwrap_or_default()));
        }
    }
    None
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Pushes a small single-platform image (config + one layer) and tags it. Returns its digest.
pub async fn push_image<S: Store>(store: &S, tag: Option<&str>, seed: &str, arch: &str) -> Digest {
    let layer = format!("layer contents {seed}").into_bytes();
    let layer_desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", &layer);
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
        layer_desc.digest
    )
    .into_bytes();
    let config_desc = Descriptor::of(OCI_CONFIG, &config);
    store.put_blob(layer).await.expect("push layer");
    store.put_blob(config).await.expect("push config");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [layer_desc]
    }))
    .expect("json");
    let r = match tag {
        Some(t) => ManifestRef::Tag(t.to_owned()),
        None => ManifestRef::Digest(Digest::sha256(&manifest)),
    };
    store.put_manifest(&r, OCI_MANIFEST, manifest).await.expect("push manifest")
}

/// Pushes a two-platform index (amd64, arm64) under `tag`. Returns (index, [children]).
pub async fn push_index<S: Store>(store: &S, tag: &str, seed: &str) -> (Digest, Vec<Digest>) {
    let mut children = Vec::new();
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let d = push_image(store, None, &format!("{seed}-{arch}"), arch).await;
        let raw = store.get_manifest(&ManifestRef::Digest(d.clone())).await.expect("get").expect("present");
        let mut desc = Descriptor::of(OCI_MANIFEST, &raw.bytes);
        desc.platform = Some(serde_json::json!({"architecture": arch, "os": "linux"}));
        entries.push(desc);
        children.push(d);
    }
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
            .expect("json");
    let d = store.put_manifest(&ManifestRef::Tag(tag.to_owned()), OCI_INDEX, index).await.expect("push index");
    (d, children)
}

/// A fresh OCI layout with one image tagged `tag`.
pub fn layout_with_image(dir: &Path, tag: &str, seed: &str) -> Digest {
    let store = LayoutStore::create(dir).expect("create layout");
    rt().block_on(push_image(&store, Some(tag), seed, "amd64"))
}

/// The vendored third-party vectors (`testdata/vectors`, see its README): the
/// sigstore-conformance suite and Sigstore trusted roots. Missing data fails the test: a
/// clone must run the same suite CI runs.
pub fn vectors() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors");
    assert!(
        p.join("sigstore-conformance/bundle-verify").is_dir() && p.join("trust").is_dir(),
        "the vendored vectors are missing at {}: restore testdata/vectors from git",
        p.display()
    );
    p
}

/// The sigstore-conformance `bundle-verify` cases.
pub fn conformance_suite() -> PathBuf {
    vectors().join("sigstore-conformance/bundle-verify")
}

pub fn sigil_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sigil"))
}

pub fn cosign_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/cosign/usr/bin/cosign");
    assert!(p.exists(), "cosign is not installed at {}: run scripts/setup.sh", p.display());
    p
}

/// cosign 3.1 from Debian unstable (scripts/setup.sh; the package version is in
/// `.tools/cosign3/.deb-version`, the binary itself says "devel"). Missing fails the test.
pub fn cosign3_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/cosign3/usr/bin/cosign");
    assert!(p.exists(), "cosign 3 is not installed at {}: run scripts/setup.sh", p.display());
    p
}

/// skopeo 1.18 from Debian's next suite (scripts/setup.sh), run under its own loader.
pub fn skopeo_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/skopeo/skopeo");
    assert!(p.exists(), "skopeo is not installed at {}: run scripts/setup.sh", p.display());
    p
}

/// Runs sigil with the test password in the environment, in `cwd`.
pub fn sigil(cwd: &Path, args: &[&str]) -> Output {
    sigil_env(cwd, args, &[("SIGIL_PASSWORD", PASSWORD)])
}

pub fn sigil_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(sigil_bin());
    c.args(legacy_unless_named(args));
    isolate(&mut c, cwd, env);
    c.stdin(Stdio::null()).output().expect("run sigil")
}

/// `sign` and `attest` write cosign 3's bundle format by default; the suites written for
/// cosign 2's storage (`.sig`/`.att` tags, read by cosign 2 and skopeo) keep it by passing
/// `--format legacy`, added here unless a test names a format itself.
///
/// Signing with a key records the signature in the public-good transparency log by default,
/// as cosign does; tests never leave the machine, so a key signing that names neither
/// `--tlog-upload` nor `--signing-config` gets `--tlog-upload=false` (the suites against the
/// local Sigstore stack name its signing configuration), and a key verification that names
/// neither `--insecure-ignore-tlog` nor `--trusted-root` gets `--insecure-ignore-tlog`.
pub fn legacy_unless_named(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let named = |flag: &str| args.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
    let writes = matches!(args.first(), Some(&"sign") | Some(&"attest"));
    if writes && !named("--format") {
        out.insert(1, "--format=legacy".into());
    }
    let signs = matches!(args.first(), Some(&"sign") | Some(&"attest") | Some(&"sign-blob") | Some(&"attest-blob"));
    let keyed = named("--key") || args.contains(&"-k");
    if signs && keyed && !named("--tlog-upload") && !named("--signing-config") {
        out.insert(1, "--tlog-upload=false".into());
    }
    // Those signatures carry no log entry: a key verification accepts them only with
    // `--insecure-ignore-tlog` (the suites against the local stack name its trusted root).
    let verifies = matches!(args.first(), Some(&"verify") | Some(&"verify-attestation") | Some(&"inspect"));
    if verifies && keyed && !named("--insecure-ignore-tlog") && !named("--trusted-root") {
        out.insert(1, "--insecure-ignore-tlog".into());
    }
    out
}

/// Runs in `cwd` with no sigil or cosign settings from the caller's environment (no
/// password, Docker config, TUF cache or trusted root), then with `env`.
pub fn isolate(c: &mut Command, cwd: &Path, env: &[(&str, &str)]) {
    c.current_dir(cwd)
        .env_remove("SIGIL_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("SIGIL_REPOSITORY")
        .env("DOCKER_CONFIG", cwd.join(".docker-none"))
        .env("SIGIL_TUF_CACHE", cwd.join(".tuf-none"))
        .env_remove("SIGIL_TRUSTED_ROOT")
        .env_remove("SIGIL_TUF_URL")
        .env_remove("SIGIL_TUF_ROOT")
        .env_remove("SIGIL_SIGNING_CONFIG")
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
}

/// Runs cosign offline: no TUF, no tlog, password from the environment.
pub fn cosign(cwd: &Path, args: &[&str]) -> Output {
    cosign_env(cwd, args, &[])
}

/// Runs cosign with extra environment variables.
pub fn cosign_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_cosign(cosign_bin(), cwd, args, env)
}

/// Runs cosign 3 offline, isolated like [`cosign`].
pub fn cosign3(cwd: &Path, args: &[&str]) -> Output {
    cosign3_env(cwd, args, &[])
}

/// Runs cosign 3 with extra environment variables.
pub fn cosign3_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_cosign(cosign3_bin(), cwd, args, env)
}

fn run_cosign(bin: PathBuf, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .args(args)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("TUF_ROOT", cwd.join(".sigstore-none"))
        .env("SIGSTORE_NO_CACHE", "1")
        .env("DOCKER_CONFIG", cwd.join(".docker-none"))
        .env("HOME", cwd)
        .env_remove("COSIGN_REPOSITORY")
        .stdin(Stdio::null())
        .output()
        .expect("run cosign")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
pub fn assert_code(o: &Output, want: i32) {
    assert_eq!(code(o), want, "exit code\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

/// The statements cosign prints for verified attestations (one DSSE envelope per line; its
/// other output lines are not JSON objects).
pub fn cosign_statements(out: &Output) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    stdout(out)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let env: serde_json::Value = serde_json::from_str(l).expect("cosign prints envelopes");
            let payload = base64::engine::general_purpose::STANDARD
                .decode(env["payload"].as_str().expect("payload"))
                .expect("base64");
            serde_json::from_slice(&payload).expect("statement")
        })
        .collect()
}

/// A TUF repository test double being served; stopped on drop.
pub struct TufServer(Child);
impl Drop for TufServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The project virtualenv's Python (python-tuf, the sigstore client).
pub fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/py/bin/python");
    assert!(p.exists(), "python-tuf is not installed at {}: run scripts/setup.sh", p.display());
    p
}

/// Builds a TUF repository (python-tuf) serving `trusted_root` and, when given, a signing
/// configuration, and serves it on loopback; returns (server, url, pinned root).
pub fn tuf_double(dir: &Path, trusted_root: &Path, signing_config: Option<&Path>) -> (TufServer, String, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_tuf_repo.py");
    let mut c = Command::new(python());
    c.arg(&script).arg(dir).arg(trusted_root);
    if let Some(sc) = signing_config {
        c.env("SIGNING_CONFIG", sc);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "make_tuf_repo: {}", String::from_utf8_lossy(&o.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(python())
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(dir.join("repo"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (TufServer(child), url, dir.join("root.json"))
}
