#!/usr/bin/env bash
# Installs what sigil's tests and demo need, idempotently:
#  - Debian's docker-registry (CNCF distribution), with apt;
#  - cosign 2.5 and skopeo from Debian's next suite, cosign 3 from Debian unstable, downloaded
#    with a private apt configuration per suite whose mirror is read from this machine's own apt
#    sources, unpacked into .tools/ (nothing else system-wide);
#  - refreg (a registry with the OCI referrers API), built by scripts/sigstack/sigstack.sh from
#    Debian unstable's Go sources, linked at .tools/refreg;
#  - the local Sigstore stack (Rekor v2, Fulcio, TSA, CT log, OIDC issuer), built by the same
#    script into SIGSTACK_DIR; the tests start and stop it.
# Prints the cosign path on success.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools="$here/.tools"
cosign_bin="$tools/cosign/usr/bin/cosign"

log() { printf 'setup: %s\n' "$*" >&2; }

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then sudo_if_needed apt-get update -qq >/dev/null; apt_updated=1; fi
}

if [ ! -x /usr/bin/docker-registry ] || ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  log "installing docker-registry (apt)"
  apt_update_once
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry openssl curl >/dev/null
fi

# buildah: tests/container.rs builds the Containerfile with it (vfs storage in a temporary
# folder, chroot isolation: no daemon).
if [ ! -x /usr/bin/buildah ]; then
  log "installing buildah (apt)"
  apt_update_once
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
fi

# The mirror: the first Debian archive URI in this machine's apt sources (deb822 or one-line).
mirror_uri() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1=="deb" {for(i=2;i<=NF;i++) if ($i ~ /^(https?|file|mirror\+):/ && $i !~ /security/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
}

next_suite() {
  . /etc/os-release
  case "${VERSION_CODENAME:-}" in
    bullseye) echo bookworm ;;
    bookworm) echo trixie ;;
    trixie) echo forky ;;
    *) echo testing ;;
  esac
}

# A private apt configuration per Debian suite (nothing system-wide) under .tools/apt/SUITE,
# with its package lists updated once per run of this script.
apt_ready=""
rm -rf "$tools/apt/lists" "$tools/apt/cache" "$tools/apt/etc" "$tools/apt"/*.deb   # the earlier, single-suite layout
suite_apt() {
  local suite=$1 uri
  aptdir="$tools/apt/$suite"
  apt_opts=(-o "Dir::Etc=$aptdir/etc" -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
            -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Architecture=$(dpkg --print-architecture)")
  case " $apt_ready " in *" $suite "*) return ;; esac
  uri=$(mirror_uri)
  [ -n "$uri" ] || { log "cannot find a Debian mirror in /etc/apt/sources*"; exit 1; }
  log "reading Debian $suite via $uri (private apt configuration in $aptdir)"
  mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d,etc/apt.conf.d}
  : > "$aptdir/etc/sources.list"
  cat > "$aptdir/etc/sources.list.d/$suite.sources" <<SRC
Types: deb
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get "${apt_opts[@]}" update -qq >/dev/null || { log "apt-get update for Debian $suite failed"; exit 1; }
  apt_ready="$apt_ready $suite"
}

# Downloads Debian packages from SUITE and unpacks them all into DEST (replaced as a whole, so an
# interrupted run leaves no half-unpacked tool); DEST/.deb-version is the first package's version.
unpack_from() {
  local suite=$1 dest=$2; shift 2
  suite_apt "$suite"
  local debs="$aptdir/debs"
  rm -rf "$debs" "$dest.tmp" && mkdir -p "$debs" "$dest.tmp"
  (cd "$debs" && apt-get "${apt_opts[@]}" download -qq "$@" >/dev/null 2>&1) || {
    log "could not download $* from Debian $suite"; exit 1; }
  local deb
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dest.tmp"; done
  dpkg-deb -f "$(ls "$debs/$1"_*.deb)" Version > "$dest.tmp/.deb-version"
  rm -rf "$debs" "$dest" && mv "$dest.tmp" "$dest"
}

if [ ! -x "$cosign_bin" ]; then
  log "fetching cosign from Debian's next suite"
  unpack_from "$(next_suite)" "$tools/cosign" cosign
fi
"$cosign_bin" version >/dev/null 2>&1 || { log "cosign at $cosign_bin does not run"; exit 1; }

# cosign 3 (Sigstore bundles as OCI referrers) from Debian unstable, for the bundle-format interop
# tests. Debian's build says "devel" in `cosign version`: the package version is in .deb-version.
cosign3_bin="$tools/cosign3/usr/bin/cosign"
if [ ! -x "$cosign3_bin" ] || [ ! -s "$tools/cosign3/.deb-version" ]; then
  log "fetching cosign 3 from Debian unstable"
  unpack_from sid "$tools/cosign3" cosign
fi
case $(cat "$tools/cosign3/.deb-version") in
  3.*) ;;
  *) log "Debian unstable's cosign is $(cat "$tools/cosign3/.deb-version"), not 3.x: the interop tests need cosign 3"; exit 1 ;;
esac
"$cosign3_bin" version >/dev/null 2>&1 || { log "cosign 3 at $cosign3_bin does not run"; exit 1; }

# skopeo (containers/image, what podman and CRI-O verify with) from the next suite, with the C
# libraries it links and that suite's C library and loader: a newer suite's binary needs a
# newer glibc than this machine may have, so it runs under its own loader (.tools/skopeo/skopeo).
skopeo_bin="$tools/skopeo/skopeo"
if [ ! -x "$skopeo_bin" ] || ! "$skopeo_bin" --version >/dev/null 2>&1; then
  log "fetching skopeo and its libraries from Debian's next suite"
  unpack_from "$(next_suite)" "$tools/skopeo/root" skopeo libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0 libc6 libgcc-s1
  loader=$(ls "$tools"/skopeo/root/usr/lib/*/ld-linux*.so.* | head -n1)
  lib=$(dirname "$loader")
  cat > "$skopeo_bin" <<WRAP
#!/bin/sh
exec "$loader" --library-path "$lib" "$tools/skopeo/root/usr/bin/skopeo" "\$@"
WRAP
  chmod +x "$skopeo_bin"
fi
"$skopeo_bin" --version >/dev/null 2>&1 || { log "skopeo at $skopeo_bin does not run"; exit 1; }

# refreg: go-containerregistry's registry with the OCI 1.1 referrers API (docker-registry 2.8 has
# none), built from Debian unstable's Go sources by scripts/sigstack/sigstack.sh, whose state lives
# in SIGSTACK_DIR (default ~/.cache/sigstack, outside the clone). Tests find it at .tools/refreg.
refreg=$(bash "$here/scripts/sigstack/sigstack.sh" setup-refreg) || { log "could not build refreg (see above)"; exit 1; }
[ -x "$refreg" ] || { log "sigstack setup-refreg printed no usable binary: '$refreg'"; exit 1; }
ln -sfn "$refreg" "$tools/refreg"

# The local Sigstore stack the signing tests start and stop on free ports
# (tests/common/sigstack.rs): Rekor v2, Fulcio, the timestamp authority, a CT log and an OIDC
# issuer, built from Debian unstable's Go sources into SIGSTACK_DIR (cold: ~3 minutes and
# 4.7 GB; a no-op while current). Its prerequisites (gcc, libc6-dev, python3-cryptography,
# openssl, curl) come from the machine's apt sources.
bash "$here/scripts/sigstack/sigstack.sh" prereqs --install >&2 || { log "could not install the sigstack prerequisites"; exit 1; }
bash "$here/scripts/sigstack/sigstack.sh" setup >&2 || { log "could not build the local Sigstore stack (see above)"; exit 1; }

# Python tools in a project-local virtualenv (PyPI): python-tuf builds the TUF repository test
# double; the sigstore client is the benchmark's third peer (it brings python-tuf along).
if [ ! -x "$tools/py/bin/sigstore" ]; then
  log "installing the Python sigstore client and python-tuf into .tools/py (PyPI)"
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install -q sigstore >/dev/null
fi
echo "$cosign_bin"
