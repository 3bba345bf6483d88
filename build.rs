//! Records the git commit sigil is built from (`sigil version`, `sigil --version`), so a binary
//! in the field can be traced to its source. Only git's own plumbing is asked; outside a git
//! checkout of this crate, or without git, the commit is "unknown" (or SIGIL_BUILD_COMMIT, for
//! builds from a source archive).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SIGIL_BUILD_COMMIT");
    let (commit, dirty) = match std::env::var("SIGIL_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => (c.trim().to_owned(), "unknown"),
        _ => from_git().unwrap_or_else(|| ("unknown".to_owned(), "unknown")),
    };
    println!("cargo:rustc-env=SIGIL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SIGIL_GIT_DIRTY={dirty}");
    // What `--version` shows after the version: the commit, "-dirty" when tracked files differ.
    let suffix = if dirty == "true" { "-dirty" } else { "" };
    println!("cargo:rustc-env=SIGIL_GIT_SOURCE={commit}{suffix}");
}

/// The commit of HEAD and whether tracked files differ from it ("true"/"false"), when this
/// crate's folder is the top of a git work tree.
fn from_git() -> Option<(String, &'static str)> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    // Not the commit of some enclosing repository this crate happens to be unpacked in.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != Path::new(&manifest_dir).canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves (checkout, commit, reset): HEAD itself, the branch it points to
    // (loose or packed), and the index (staging and commits rewrite it). Paths come from git,
    // so linked work trees (.git is a file there) are followed too. A path that does not exist
    // is not named: cargo would rerun the script on every build.
    let mut watched = vec!["HEAD".to_owned(), "index".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    // Edits to the sources make the tree dirty; cargo scans these folders' modification times.
    for p in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let commit = git(&["rev-parse", "HEAD"])?;
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Tracked files only; without taking git's index lock (a concurrent git command is unharmed).
    let dirty = match git(&["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if s.is_empty() => "false",
        Some(_) => "true",
        None => "unknown",
    };
    Some((commit, dirty))
}

/// One git command's trimmed output, or `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}
