//! The everyday tooling around the commands (issue 12): `completion`, `man`, `version`, and
//! stdout in a pipeline. No registry is needed: only the sigil binary and, where the machine
//! has them, git, bash and man.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil")).args(args).stdin(Stdio::null()).output().expect("run sigil")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = sigil(args);
    assert_eq!(out.status.code(), Some(0), "sigil {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `git` in the checkout the tests run in, or `None` without git or outside a checkout.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    out.status.success().then(|| text(&out.stdout).trim().to_owned())
}

/// Whether a program is on the PATH.
fn has(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

// see: issue 12
#[test]
fn version_names_the_commit_of_this_checkout() {
    let head = match git(&["rev-parse", "--show-toplevel"]) {
        Some(top)
            if Path::new(&top).canonicalize().ok() == Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().ok() =>
        {
            git(&["rev-parse", "HEAD"]).expect("git rev-parse HEAD")
        }
        _ => "unknown".to_owned(),
    };
    // The JSON schema is pinned: these three fields, nothing else.
    let v: Value = serde_json::from_str(ok(&["version", "--output", "json"]).trim()).expect("one JSON document");
    let fields: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(fields, ["commit", "dirty", "version"], "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["commit"], head.as_str(), "built from another commit than this checkout's HEAD");
    assert!(v["dirty"].is_boolean() || (v["dirty"].is_null() && head == "unknown"), "{v}");

    // Text: the same line for `version`, `--version` and `-V`.
    let suffix = if v["dirty"] == true { "-dirty" } else { "" };
    let line = format!("sigil {} ({head}{suffix})\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(ok(&["version"]), line);
    assert_eq!(ok(&["--version"]), line);
    assert_eq!(ok(&["-V"]), line);
}

// see: issue 12
#[test]
fn completion_scripts_are_generated_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&["completion", shell]);
        // Every command and a shared flag, from the same definitions as the parser (fish
        // writes `-l max-blob-size`).
        for word in ["verify-attestation", "download", "trusted-root", "max-blob-size", "signature-repository"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        // The former name --max-size is a hidden alias: not offered.
        assert!(!script.contains("max-size"), "{shell} completion offers the hidden --max-size");
    }
    if has("bash") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sigil.bash");
        std::fs::write(&path, ok(&["completion", "bash"])).unwrap();
        // Parses, and defines the completion for `sigil` when sourced.
        let out = Command::new("bash")
            .args(["-c", &format!("source {} && complete -p sigil", path.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("_sigil"), "{}", text(&out.stdout));
    }
    let out = sigil(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

// see: issue 12
#[test]
fn man_page_renders() {
    let page = ok(&["man"]);
    for section in [".TH sigil 1", ".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS", ".SH VERSION"] {
        assert!(page.contains(section), "no {section}:\n{page}");
    }
    assert!(page.contains("sigil\\-verify\\-attestation(1)"), "subcommands name their pages:\n{page}");
    if !has("man") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sigil.1");
    std::fs::write(&path, &page).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "man -l: {}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("SYNOPSIS") && shown.contains("verify-attestation"), "{shown}");
    // groff finds nothing to warn about (-ww: all warnings).
    if has("groff") {
        let out = Command::new("groff").args(["-man", "-ww", "-z"]).arg(&path).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "groff: {}", text(&out.stderr));
    }
}

// see: issue 12
#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = sigil(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "pages go to the folder, not stdout");
    for name in
        ["sigil.1", "sigil-verify.1", "sigil-download-attestation.1", "sigil-man.1", "sigil-trusted-root-update.1"]
    {
        let page = std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.contains(".SH SYNOPSIS"), "{name}:\n{page}");
    }
    assert!(!dir.path().join("sigil-help.1").exists(), "clap's help subcommand has no page");

    let out = sigil(&["man", "--dir", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot write") && text(&out.stderr).contains("--dir"), "{}", text(&out.stderr));
}

// see: issue 12
#[test]
fn broken_pipe_on_stdout_exits_quietly() {
    // 77 KB of completion script: more than a pipe holds, so the write meets the closed reader
    // whichever comes first. `version` prints one line through the line writer.
    for args in [&["completion", "bash"][..], &["man"], &["version"], &["version", "-o", "json"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "sigil {args:?}: {err}");
        assert!(err.is_empty(), "sigil {args:?} said something on stderr: {err}");
    }
}

// see: issue 12
#[test]
fn full_disk_on_stdout_is_an_error_not_a_panic() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_sigil")).arg("version").stdout(full).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("could not write to stdout") && !err.contains("panicked"), "{err}");
}

// see: issue 12
#[test]
fn max_size_is_a_hidden_alias_of_max_blob_size() {
    for cmd in
        [&["download", "sbom"][..], &["download", "attestation"], &["inspect"], &["verify"], &["verify-attestation"]]
    {
        let help = ok(&[cmd, &["--help"]].concat());
        assert!(help.contains("--max-blob-size <MAX_BLOB_SIZE>"), "{cmd:?}:\n{help}");
        assert!(help.contains("[default: 134217728]"), "{cmd:?}: one default everywhere (128 MiB):\n{help}");
        assert!(!help.contains("--max-size"), "{cmd:?}:\n{help}");
    }
    // Accepted, parsed as the same flag (a value out of range is refused under either name).
    let out = sigil(&["download", "sbom", "--max-size", "0", "oci:nowhere:v1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--max-blob-size"), "{}", text(&out.stderr));
}
