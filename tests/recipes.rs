//! docs/recipes.md, run: every ```` ```sh ```` block, and every GitHub Actions `run:` step and
//! GitLab CI job script of the CI configurations marked `# recipe-test: run steps`, in document
//! order, in one working folder, against Debian's docker-registry over HTTPS and the local
//! Sigstore stack, with the environment the CI systems would give the jobs. The page's "How
//! this page is tested" states the convention this file implements; a recipe whose command
//! fails fails here with the block and its output, so the page cannot drift from the CLI.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_yaml_ng::Value;

/// The first line of a CI configuration whose steps the test runs.
const STEPS_MARKER: &str = "# recipe-test: run steps";
/// How long one block or step may take before it is killed (with everything it started).
const BLOCK_DEADLINE: Duration = Duration::from_secs(120);

/// One fenced block of the page, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The `## ` heading above it, and the `### ` one (empty when none).
    section: String,
    heading: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The fence's info string (`sh`, `sh norun`, `yaml`, …).
    info: String,
    text: String,
}

/// Which CI system a configuration is for (and so which variables its steps get).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ci {
    GitHubActions,
    GitLabCi,
}

/// Something to run: a shell block, or one CI step (a GitHub `run:`, a GitLab job's script).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    ci: Option<Ci>,
    /// The step's job and name, for messages (empty for a shell block).
    step: String,
    script: String,
}

/// The fenced blocks of a markdown page, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let (mut out, mut section, mut heading) = (Vec::new(), String::new(), String::new());
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (Some((start, info, body)), Some(rest)) if rest.trim().is_empty() => {
                out.push(Block {
                    section: section.clone(),
                    heading: heading.clone(),
                    line: *start,
                    info: std::mem::take(info),
                    text: body.join("\n") + "\n",
                });
                open = None;
            }
            (Some((_, _, body)), _) => body.push(line),
            (None, Some(info)) => open = Some((i + 1, info.trim().to_owned(), Vec::new())),
            (None, None) => {
                if let Some(h) = line.strip_prefix("## ") {
                    (section, heading) = (h.trim().to_owned(), String::new());
                } else if let Some(h) = line.strip_prefix("### ") {
                    heading = h.trim().to_owned();
                }
            }
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    out
}

/// What the test runs of a block: nothing (shown only), the block, or the CI steps in it.
fn units(block: &Block) -> Result<Vec<Unit>, String> {
    let mut words = block.info.split_whitespace();
    let lang = words.next().unwrap_or_default();
    let norun = words.any(|w| w == "norun");
    match lang {
        "sh" | "bash" if norun => {
            if let Some(l) = block.text.lines().find(|l| l.trim_start().starts_with("sigil ")) {
                return Err(format!("a norun block holds a sigil command ({l:?}): every sigil command must run"));
            }
            if !block.text.lines().any(|l| l.trim_start().starts_with('#')) {
                return Err("a norun block without a comment saying why it cannot run".into());
            }
            Ok(Vec::new())
        }
        "sh" | "bash" => Ok(vec![Unit { ci: None, step: String::new(), script: block.text.clone() }]),
        "yaml" | "yml" if block.text.lines().next().map(str::trim) == Some(STEPS_MARKER) => ci_steps(&block.text),
        _ => Ok(Vec::new()),
    }
}

/// The `run:` steps of a GitHub Actions workflow (each job's, in order), or each GitLab CI
/// job's `before_script` and `script` as one script (GitLab runs them in one shell).
fn ci_steps(yaml: &str) -> Result<Vec<Unit>, String> {
    let doc: Value = serde_yaml_ng::from_str(yaml).map_err(|e| format!("not YAML: {e}"))?;
    let top = doc.as_mapping().ok_or("not a YAML mapping")?;
    let text = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Sequence(items) => Ok(items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or(format!("a script line is not a string: {i:?}")))
                .collect::<Result<Vec<_>, _>>()?
                .join("\n")),
            other => Err(format!("a script is not a string or a list: {other:?}")),
        }
    };
    let mut out = Vec::new();
    if let Some(jobs) = top.get("jobs") {
        let jobs = jobs.as_mapping().ok_or("`jobs` is not a mapping")?;
        for (job, body) in jobs {
            let job = job.as_str().unwrap_or("?");
            let steps = body.get("steps").and_then(Value::as_sequence).ok_or(format!("job {job}: no steps"))?;
            for (n, step) in steps.iter().enumerate() {
                let Some(run) = step.get("run") else { continue };
                let script = text(run)?;
                if script.contains("${{") {
                    return Err(format!(
                        "job {job}, step {}: `${{{{ }}}}` in a run: script; pass the value through the step's env:",
                        n + 1
                    ));
                }
                let name = step.get("name").and_then(Value::as_str).map_or(format!("step {}", n + 1), str::to_owned);
                out.push(Unit { ci: Some(Ci::GitHubActions), step: format!("{job}: {name}"), script: script + "\n" });
            }
        }
    } else {
        for (job, body) in top {
            let job = job.as_str().unwrap_or("?");
            let Some(script) = body.get("script").filter(|_| !job.starts_with('.')) else { continue };
            let mut lines = Vec::new();
            if let Some(before) = body.get("before_script") {
                lines.push(text(before)?);
            }
            lines.push(text(script)?);
            out.push(Unit { ci: Some(Ci::GitLabCi), step: job.to_owned(), script: lines.join("\n") + "\n" });
        }
    }
    if out.is_empty() {
        return Err(format!("marked `{STEPS_MARKER}` but has no run: steps and no job with a script"));
    }
    Ok(out)
}

/// The variables of the page's table (first column of the table rows under "How this page
/// is tested"), which the test must set.
fn documented_variables(markdown: &str) -> Vec<String> {
    let section = markdown.split("\n## ").find(|s| s.starts_with("How this page is tested")).unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let cell = l.split(" |").next().unwrap_or_default();
            cell.split(", ").map(|v| v.trim_matches('`').to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

/// A stand-in for GitHub Actions' token service on loopback: answers `{"value": TOKEN}` to
/// a request with the job's bearer and `audience=sigstore`, for as long as the test runs.
fn github_token_service(token: String, bearer: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let authorised = head.lines().any(|l| l.eq_ignore_ascii_case(&format!("authorization: bearer {bearer}")));
            let (status, body) = if authorised && head.contains("audience=sigstore") {
                ("200 OK", serde_json::json!({"count": 1, "value": token}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/idtoken?api-version=2.0")
}

/// Runs `unit` in `dir` with `env` under `bash -euo pipefail`, in its own process group (all
/// of which is killed when it ends or overruns); panics with the block and its output when
/// it fails.
fn run(dir: &Path, logs: &Path, n: usize, block: &Block, unit: &Unit, env: &BTreeMap<String, String>) -> Duration {
    let script = logs.join(format!("{n}.sh"));
    std::fs::write(&script, &unit.script).expect("write script");
    let (out, err) = (logs.join(format!("{n}.out")), logs.join(format!("{n}.err")));
    let mut c = Command::new("bash");
    c.args(["-euo", "pipefail"]).arg(&script);
    // Only the environment given: nothing of the caller's (passwords, Docker config, trust).
    c.current_dir(dir).env_clear().envs(env).process_group(0);
    let started = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("run bash");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > BLOCK_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the block left running (a server it started) goes with it: the process group
    // made for this block, by its id.
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
    let _ = child.wait();
    let took = started.elapsed();
    let what = format!(
        "docs/recipes.md line {} ({} / {}){}",
        block.line,
        block.section,
        block.heading,
        if unit.step.is_empty() { String::new() } else { format!(", step {}", unit.step) }
    );
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    match status {
        Some(s) if s.success() => took,
        s => panic!(
            "{what} failed ({}):\n--- script\n{}--- stdout\n{}--- stderr\n{}",
            s.map_or(format!("killed after {BLOCK_DEADLINE:?}"), |s| s.to_string()),
            unit.script,
            read(&out),
            read(&err)
        ),
    }
}

#[test]
fn every_command_in_the_recipes_runs() {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/recipes.md")).expect("read docs/recipes.md");
    let blocks = blocks(&page);
    let planned: Vec<(Block, Vec<Unit>)> = blocks
        .iter()
        .map(|b| (b.clone(), units(b).unwrap_or_else(|e| panic!("docs/recipes.md line {}: {e}", b.line))))
        .collect();
    assert!(planned.iter().any(|(_, u)| u.iter().any(|u| u.ci == Some(Ci::GitHubActions))), "no GitHub Actions steps");
    assert!(planned.iter().any(|(_, u)| u.iter().any(|u| u.ci == Some(Ci::GitLabCi))), "no GitLab CI job");

    // The registry (HTTPS: the recipes use no insecure flag) and the Sigstore instance.
    let (reg, ca) = Registry::start_tls();
    let stack = sigstack::stack();
    let host = reg.host();
    let opts = sigil::oci::registry::RegistryOptions {
        transport: sigil::oci::registry::Transport::Https,
        extra_ca_pem: vec![std::fs::read(&ca).expect("read CA")],
        ..Default::default()
    };
    let digest =
        rt().block_on(push_image(&reg.store_with("example/app", opts.clone()), Some("v1.2.0"), "app", "amd64"));
    rt().block_on(push_image(&reg.store_with("example/unsigned", opts), Some("latest"), "unsigned", "amd64"));
    let image = format!("{host}/example/app@{digest}");

    // The working folder, with what the pipeline's other steps would have made.
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let logs = tempfile::tempdir().expect("tempdir");
    std::fs::copy(root.join("testdata/recipes/sbom.cdx.json"), dir.join("sbom.cdx.json")).expect("sbom");
    std::fs::create_dir_all(dir.join("k8s")).expect("mkdir");
    let app = std::fs::read_to_string(root.join("testdata/recipes/app.yaml")).expect("app.yaml");
    std::fs::write(dir.join("k8s/app.yaml"), app.replace("REGISTRY/", &format!("{host}/"))).expect("k8s/app.yaml");
    std::fs::create_dir_all(dir.join("home")).expect("mkdir");
    std::fs::create_dir_all(dir.join(".bin")).expect("mkdir");
    std::os::unix::fs::symlink(sigil_bin(), dir.join(".bin/sigil")).expect("link sigil");
    std::os::unix::fs::symlink(root.join("deploy"), dir.join("deploy")).expect("link deploy");

    let email = "release@example.com";
    let token_url = github_token_service(stack.token(email), "job-request-token");
    let webhook_port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let path = format!("{}:{}", dir.join(".bin").display(), std::env::var("PATH").unwrap_or_default());
    let common: BTreeMap<String, String> = [
        ("PATH", path.as_str()),
        ("HOME", &dir.join("home").display().to_string()),
        ("DOCKER_CONFIG", &dir.join("home/.docker").display().to_string()),
        ("SIGIL_TUF_CACHE", &dir.join("home/.tuf-none").display().to_string()),
        ("LANG", "C.UTF-8"),
        ("IMAGE", &image),
        ("REGISTRY", &host),
        ("UNSIGNED_IMAGE", &format!("{host}/example/unsigned:latest")),
        ("RELEASE_IDENTITY_RE", &regex::escape(email)),
        ("RELEASE_ISSUER", stack.issuer()),
        ("SIGIL_PASSWORD", PASSWORD),
        ("SIGIL_SIGNING_CONFIG", stack.signing_config()),
        ("SIGIL_TRUSTED_ROOT", stack.trusted_root()),
        ("SSL_CERT_FILE", &ca.display().to_string()),
        ("WEBHOOK_PORT", &webhook_port.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for v in documented_variables(&page) {
        assert!(common.contains_key(&v), "the page documents {v}, which the test does not set");
    }
    let sha = "4f2d0c3b8a1e5f6d7c9b0a1e2d3c4b5a6f708192";
    let github = [
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "example/app"),
        ("GITHUB_REF", "refs/tags/v1.2.0"),
        ("GITHUB_REF_NAME", "v1.2.0"),
        ("GITHUB_SHA", sha),
        ("GITHUB_WORKFLOW_REF", "example/app/.github/workflows/release.yml@refs/tags/v1.2.0"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_RUN_ID", "1234567890"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("RUNNER_ENVIRONMENT", "github-hosted"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", &token_url),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token"),
    ];
    let gitlab = [
        ("CI_REGISTRY_IMAGE", format!("{host}/example/app")),
        ("IMAGE_DIGEST", digest.to_string()),
        ("CI_REGISTRY_USER", "gitlab-ci-token".into()),
        // The job's `variables:` (SIGIL_REGISTRY_PASSWORD: $CI_REGISTRY_PASSWORD); this
        // registry asks for no credentials.
        ("SIGIL_REGISTRY_PASSWORD", "job-token".into()),
        ("CI_PROJECT_URL", "https://gitlab.com/example/app".into()),
        ("CI_PROJECT_PATH", "example/app".into()),
        ("CI_SERVER_URL", "https://gitlab.com".into()),
        ("CI_JOB_NAME", "release".into()),
        ("CI_JOB_URL", "https://gitlab.com/example/app/-/jobs/4242".into()),
        ("CI_RUNNER_ID", "12".into()),
        ("CI_COMMIT_TAG", "v1.2.0".into()),
        ("CI_COMMIT_SHA", sha.into()),
    ];

    let mut timings = Vec::new();
    let mut n = 0;
    for (block, units) in &planned {
        for unit in units {
            let mut env = common.clone();
            match unit.ci {
                Some(Ci::GitHubActions) => env.extend(github.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
                Some(Ci::GitLabCi) => {
                    env.extend(gitlab.iter().map(|(k, v)| (k.to_string(), v.clone())));
                    // The CI/CD variable holds the key the page made "once" above.
                    let key = std::fs::read_to_string(dir.join("release.key"))
                        .expect("release.key: the page makes it before the GitLab job");
                    env.insert("SIGNING_KEY".into(), key);
                }
                None => {}
            }
            n += 1;
            let took = run(dir, logs.path(), n, block, unit, &env);
            timings.push(format!("{:>6} ms  line {} {}", took.as_millis(), block.line, unit.step));
        }
    }
    assert!(n >= 15, "only {n} blocks and steps ran: did the page's convention change?");
    eprintln!("{n} recipe blocks and steps ran in {:?}:\n{}", started.elapsed(), timings.join("\n"));
}

#[test]
fn recipe_blocks_are_extracted_by_the_page_convention() {
    let page = r##"# T
## Release
Some prose with an inline ```` ```sh ```` fence.
```sh
sigil sign "$IMAGE"
```
### GitHub
```yaml
# recipe-test: run steps
jobs:
  release:
    steps:
      - uses: actions/checkout@v4
      - name: Sign
        env: {IMAGE: "x@${{ steps.build.outputs.digest }}"}
        run: sigil sign "$IMAGE"
      - run: |
          echo one
          echo two
```
```yaml
# just shown
jobs: {}
```
### GitLab
```yaml
# recipe-test: run steps
.hidden:
  script: [echo no]
release:
  before_script: [cd build]
  script:
    - sigil sign --key env://K "$IMAGE"
    - |
      echo multi
```
## Gate
```sh norun
# no cluster here
kubectl apply -f x.yaml
```
```json
{"not": "run"}
```
"##;
    let b = blocks(page);
    assert_eq!(
        b.iter().map(|b| (b.section.as_str(), b.heading.as_str(), b.line, b.info.as_str())).collect::<Vec<_>>(),
        vec![
            ("Release", "", 4, "sh"),
            ("Release", "GitHub", 8, "yaml"),
            ("Release", "GitHub", 21, "yaml"),
            ("Release", "GitLab", 26, "yaml"),
            ("Gate", "", 38, "sh norun"),
            ("Gate", "", 42, "json"),
        ]
    );
    let got: Vec<Vec<Unit>> = b.iter().map(|b| units(b).unwrap()).collect();
    let shell = |s: &str| Unit { ci: None, step: String::new(), script: s.into() };
    let gh = |step: &str, s: &str| Unit { ci: Some(Ci::GitHubActions), step: step.into(), script: s.into() };
    assert_eq!(got[0], vec![shell("sigil sign \"$IMAGE\"\n")]);
    assert_eq!(
        got[1],
        vec![gh("release: Sign", "sigil sign \"$IMAGE\"\n"), gh("release: step 3", "echo one\necho two\n\n")]
    );
    assert!(got[2].is_empty() && got[4].is_empty() && got[5].is_empty());
    assert_eq!(
        got[3],
        vec![Unit {
            ci: Some(Ci::GitLabCi),
            step: "release".into(),
            script: "cd build\nsigil sign --key env://K \"$IMAGE\"\necho multi\n\n".into()
        }]
    );

    // What the convention refuses: a sigil command only shown, an expression in a script.
    let shown = Block {
        section: "S".into(),
        heading: String::new(),
        line: 1,
        info: "sh norun".into(),
        text: "sigil verify x\n".into(),
    };
    assert!(units(&shown).unwrap_err().contains("norun block holds a sigil command"));
    let unexplained = Block { text: "kubectl apply -f x.yaml\n".into(), ..shown.clone() };
    assert!(units(&unexplained).unwrap_err().contains("without a comment"));
    let expr = Block {
        info: "yaml".into(),
        text: format!("{STEPS_MARKER}\njobs:\n  j:\n    steps:\n      - run: sigil sign ${{{{ env.X }}}}\n"),
        ..shown.clone()
    };
    assert!(units(&expr).unwrap_err().contains("through the step's env:"));
    let empty = Block { info: "yaml".into(), text: format!("{STEPS_MARKER}\nstages: [a]\n"), ..shown };
    assert!(units(&empty).unwrap_err().contains("no run: steps"));
    assert_eq!(
        documented_variables("# P\n## How this page is tested\n| variable | x |\n| --- | --- |\n| `A` | a |\n| `B`, `C` | b |\n## Next\n| `D` | d |\n"),
        vec!["A", "B", "C"]
    );
}
