#!/usr/bin/env bash
# Installs what sigil's tests and demo need, idempotently:
#  - Debian's docker-registry (CNCF distribution), with apt;
#  - cosign and skopeo from Debian's next suite, downloaded with a private apt configuration
#    whose mirror is read from this machine's own apt sources, unpacked into .tools/ (nothing
#    else system-wide).
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

# A private apt configuration for Debian's next suite (nothing system-wide), updated once.
aptdir="$tools/apt"
next_apt_ready=0
next_apt() {
  if [ "$next_apt_ready" = 0 ]; then
    local uri suite
    uri=$(mirror_uri)
    [ -n "$uri" ] || { log "cannot find a Debian mirror in /etc/apt/sources*"; exit 1; }
    suite=$(next_suite)
    log "reading Debian $suite via $uri (private apt configuration in $aptdir)"
    mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d,etc/apt.conf.d}
    : > "$aptdir/etc/sources.list"
    cat > "$aptdir/etc/sources.list.d/next.sources" <<SRC
Types: deb
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_opts=(-o "Dir::Etc=$aptdir/etc" -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
              -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Architecture=$(dpkg --print-architecture)")
    apt-get "${apt_opts[@]}" update -qq >/dev/null
    next_apt_ready=1
  fi
}

# Downloads Debian packages from the next suite and unpacks them all into one folder.
unpack_next() {
  local dest=$1; shift
  next_apt
  local debs="$aptdir/debs"
  rm -rf "$debs" "$dest" && mkdir -p "$debs" "$dest"
  (cd "$debs" && apt-get "${apt_opts[@]}" download -qq "$@" >/dev/null 2>&1) || {
    log "could not download $* from Debian's next suite"; exit 1; }
  local deb
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
  rm -rf "$debs"
}

if [ ! -x "$cosign_bin" ]; then
  log "fetching cosign from Debian's next suite"
  unpack_next "$tools/cosign" cosign
fi
"$cosign_bin" version >/dev/null 2>&1 || { log "cosign at $cosign_bin does not run"; exit 1; }

# skopeo (containers/image, what podman and CRI-O verify with) from the next suite, with the C
# libraries it links and that suite's C library and loader: a newer suite's binary needs a
# newer glibc than this machine may have, so it runs under its own loader (.tools/skopeo/skopeo).
skopeo_bin="$tools/skopeo/skopeo"
if [ ! -x "$skopeo_bin" ] || ! "$skopeo_bin" --version >/dev/null 2>&1; then
  log "fetching skopeo and its libraries from Debian's next suite"
  unpack_next "$tools/skopeo/root" skopeo libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0 libc6 libgcc-s1
  loader=$(ls "$tools"/skopeo/root/usr/lib/*/ld-linux*.so.* | head -n1)
  lib=$(dirname "$loader")
  cat > "$skopeo_bin" <<WRAP
#!/bin/sh
exec "$loader" --library-path "$lib" "$tools/skopeo/root/usr/bin/skopeo" "\$@"
WRAP
  chmod +x "$skopeo_bin"
fi
"$skopeo_bin" --version >/dev/null 2>&1 || { log "skopeo at $skopeo_bin does not run"; exit 1; }

# Python tools in a project-local virtualenv (PyPI): python-tuf builds the TUF repository test
# double; the sigstore client is the benchmark's third peer (it brings python-tuf along).
if [ ! -x "$tools/py/bin/sigstore" ]; then
  log "installing the Python sigstore client and python-tuf into .tools/py (PyPI)"
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install -q sigstore >/dev/null
fi
echo "$cosign_bin"
