//! The container image of sigil (`Containerfile`) built with Debian's buildah, as a pipeline
//! would, but offline: nothing is pulled (no test leaves the machine), so the two base images
//! the Containerfile names by build argument are made here — a build image whose RUN steps see
//! this machine's toolchain (bind-mounted read-only, with cargo's registry cache) and a
//! runtime base holding only what the binary links against, a `nonroot` user (65532) and the
//! CA certificates, as distroless's `cc-debian12:nonroot` does. The build stage runs the
//! Containerfile's own cargo command with `PROFILE=dev` on the suite's target directory, where
//! cargo finds the test build of `sigil` fresh (a cold release build takes minutes). buildah
//! keeps its storage (vfs) in a temporary folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// The libraries a Rust binary linked against glibc needs (as `ldd` lists them for sigil).
const RUNTIME_LIBS: &[&str] =
    &["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libgcc_s.so.1"];

struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Self {
        let bin = Path::new("/usr/bin/buildah");
        assert!(bin.exists(), "buildah is not installed: run scripts/setup.sh");
        Buildah { dir: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("/usr/bin/buildah");
        let root = self.dir.path();
        c.arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run")).args(["--storage-driver", "vfs"]);
        c.env("TMPDIR", root);
        c
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "buildah {args:?}\n{}", stderr(&out));
        stdout(&out).trim().to_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
}

fn target_dir() -> PathBuf {
    // CARGO_BIN_EXE_sigil is TARGET/debug/sigil.
    sigil_bin().parent().and_then(Path::parent).unwrap().to_owned()
}

#[test]
fn containerfile_builds_a_non_root_image_that_runs_sigil() {
    // see: issue 12
    let b = Buildah::new();
    let home = std::env::var("HOME").unwrap();
    let tmp = b.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();

    // The build image: the machine's toolchain, seen through the mounts below.
    let c = b.ok(&["from", "scratch"]);
    b.ok(&[
        "config",
        "--env",
        &format!("PATH={home}/.cargo/bin:/usr/local/bin:/usr/bin:/bin"),
        "--env",
        &format!("HOME={home}"),
        "--env",
        &format!("RUSTUP_HOME={home}/.rustup"),
        "--env",
        &format!("CARGO_HOME={home}/.cargo"),
        "--env",
        "CARGO_NET_OFFLINE=true",
        &c,
    ]);
    b.ok(&["commit", "-q", &c, "localhost/sigil-test-build"]);

    // The runtime base: the libraries, a non-root user, CA certificates; nothing else.
    let c = b.ok(&["from", "scratch"]);
    for lib in RUNTIME_LIBS {
        b.ok(&["copy", &c, lib, "/lib/x86_64-linux-gnu/"]);
    }
    b.ok(&["copy", &c, "/lib64/ld-linux-x86-64.so.2", "/lib64/"]);
    let passwd = b.dir.path().join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    b.ok(&["copy", &c, passwd.to_str().unwrap(), "/etc/passwd"]);
    b.ok(&["copy", &c, "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/"]);
    b.ok(&["config", "--user", "65532:65532", &c]);
    b.ok(&["commit", "-q", &c, "localhost/sigil-test-base"]);

    let src = env!("CARGO_MANIFEST_DIR");
    let target = target_dir();
    let target = target.to_str().unwrap();
    let vol = |from: &str, to: &str, mode: &str| format!("{from}:{to}:{mode}");
    let started = std::time::Instant::now();
    let out = b.run(&[
        "bud",
        "--isolation",
        "chroot",
        // Only the base images made above; nothing is pulled.
        "--pull=never",
        "--build-arg",
        "RUST_IMAGE=localhost/sigil-test-build",
        "--build-arg",
        "BASE_IMAGE=localhost/sigil-test-base",
        "--build-arg",
        &format!("SRC={src}"),
        "--build-arg",
        "PROFILE=dev",
        "--build-arg",
        &format!("CARGO_TARGET_DIR={target}"),
        "-v",
        &vol("/usr", "/usr", "ro"),
        "-v",
        &vol("/bin", "/bin", "ro"),
        "-v",
        &vol("/lib", "/lib", "ro"),
        "-v",
        &vol("/lib64", "/lib64", "ro"),
        "-v",
        &vol("/etc", "/etc", "ro"),
        "-v",
        &vol(&format!("{home}/.rustup"), &format!("{home}/.rustup"), "ro"),
        "-v",
        &vol(&format!("{home}/.cargo"), &format!("{home}/.cargo"), "rw"),
        "-v",
        &vol(target, target, "rw"),
        "-v",
        &vol(tmp.to_str().unwrap(), "/tmp", "rw"),
        "-f",
        &format!("{src}/Containerfile"),
        "-t",
        "localhost/sigil",
        src,
    ]);
    assert!(out.status.success(), "buildah bud\n{}\n{}", stdout(&out), stderr(&out));
    eprintln!("buildah bud took {:.1} s", started.elapsed().as_secs_f64());

    // A non-root user, sigil as the entrypoint.
    let config: Value = serde_json::from_str(&b.ok(&["inspect", "--type", "image", "localhost/sigil"])).unwrap();
    assert_eq!(config["OCIv1"]["config"]["User"], "65532:65532");
    assert_eq!(config["OCIv1"]["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/sigil"]));

    // It runs: the version of this checkout.
    let c = b.ok(&["from", "localhost/sigil"]);
    let version = b.ok(&["run", "--isolation", "chroot", &c, "--", "/usr/local/bin/sigil", "version", "-o", "json"]);
    let v: Value = serde_json::from_str(&version).unwrap();
    let head = Command::new("git").args(["-C", src, "rev-parse", "HEAD"]).output().unwrap();
    assert_eq!(v["commit"], stdout(&head).trim(), "{version}");

    // And as uid 65532: it may not write where only root may.
    let out = b.run(&[
        "run",
        "--isolation",
        "chroot",
        "--env",
        "SIGIL_PASSWORD=pw",
        &c,
        "--",
        "/usr/local/bin/sigil",
        "generate-key-pair",
        "--output-key-prefix",
        "/k",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
}
