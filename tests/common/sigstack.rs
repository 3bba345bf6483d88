//! The local Sigstore stack (Rekor v2, Fulcio, the timestamp authority, a CT log and an OIDC
//! issuer, built from Debian's Go sources by scripts/sigstack/sigstack.sh; `scripts/setup.sh`
//! builds it once): one per test binary, started on free loopback ports in its own run folder
//! by the first test that asks, and stopped by a watchdog when the test binary exits, so no
//! test ever uses a stack that something else left running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A running stack.
pub struct Stack {
    env: BTreeMap<String, String>,
    run: PathBuf,
}

static STACK: OnceLock<Stack> = OnceLock::new();

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sigstack/sigstack.sh")
}

/// The test binary's stack, started on first use.
pub fn stack() -> &'static Stack {
    STACK.get_or_init(Stack::start)
}

impl Stack {
    fn start() -> Stack {
        let run = std::env::temp_dir().join(format!("sigil-sigstack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        // The watchdog first: it stops whatever `start` left behind, even if `start` fails
        // half-way or this binary is killed.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; bash '{s}' stop >/dev/null 2>&1; bash '{s}' clean >/dev/null 2>&1",
            pid = std::process::id(),
            s = script().display()
        );
        // Not waited for: it outlives this process on purpose (its whole job).
        #[allow(clippy::zombie_processes)]
        Command::new("setsid")
            .args(["sh", "-c", &watchdog])
            .env("SIGSTACK_RUN", &run)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sigstack watchdog (setsid, from util-linux)");
        let out = Command::new("bash")
            .arg(script())
            .args(["start", "--free-ports"])
            .env("SIGSTACK_RUN", &run)
            .stdin(Stdio::null())
            .output()
            .expect("run sigstack.sh start");
        assert!(
            out.status.success(),
            "the local Sigstore stack did not start (scripts/setup.sh builds it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                env.insert(k.to_owned(), v.trim_matches('\'').to_owned());
            }
        }
        assert!(env.contains_key("SIGSTACK_TRUSTED_ROOT"), "sigstack.sh start printed no environment: {env:?}");
        Stack { env, run }
    }

    /// An exported value (`SIGSTACK_…`).
    pub fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("sigstack exports no {key}"))
    }

    /// The stack's trusted_root.json.
    pub fn trusted_root(&self) -> &str {
        self.get("SIGSTACK_TRUSTED_ROOT")
    }

    /// The stack's signing_config.json (Rekor v2, Fulcio, TSA, OIDC).
    pub fn signing_config(&self) -> &str {
        self.get("SIGSTACK_SIGNING_CONFIG")
    }

    /// The OIDC issuer URL.
    pub fn issuer(&self) -> &str {
        self.get("SIGSTACK_OIDC_ISSUER")
    }

    /// The run folder (keys, logs).
    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    /// A fresh identity token for `email` (audience `sigstore`, 10 minutes).
    pub fn token(&self, email: &str) -> String {
        self.mint(&["--email", email])
    }

    /// A token minted with the issuer's extra options (`--aud`, `--ttl`, `--sub`).
    pub fn mint(&self, args: &[&str]) -> String {
        let port = self.get("SIGSTACK_OIDC_PORT");
        let lib = Path::new(self.get("SIGSTACK_DIR")).join("lib/oidc.py");
        let keydir = self.run.join("keys");
        let out = Command::new("python3")
            .arg(&lib)
            .args(["mint", "--port", port, "--keydir"])
            .arg(&keydir)
            .args(args)
            .output()
            .expect("mint a token");
        assert!(out.status.success(), "mint: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
