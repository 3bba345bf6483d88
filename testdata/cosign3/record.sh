#!/usr/bin/env bash
# Records what cosign 3 writes for an image signed and attested with a key: on Debian's
# docker-registry (no referrers API: OCI tag schema) and on refreg (go-containerregistry's
# registry with the OCI 1.1 referrers API), both on loopback. Rewrites the folders next to this
# script with the raw bytes the registries served; README.md explains them.
# Needs scripts/setup.sh to have run (cosign 3 in .tools/cosign3, refreg at .tools/refreg).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cosign=$top/.tools/cosign3/usr/bin/cosign
refreg=$top/.tools/refreg
[ -x "$cosign" ] && [ -x "$refreg" ] || { echo "record.sh: run scripts/setup.sh first" >&2; exit 1; }
. "$top/scripts/lib.sh"

work=$(mktemp -d)
REFREG_PID=""
cleanup() {
  [ -n "${REGISTRY_PID:-}" ] && stop_registry
  if [ -n "$REFREG_PID" ]; then kill "$REFREG_PID" 2>/dev/null; wait "$REFREG_PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# cosign offline and isolated: no TUF, no Docker config, no cache outside $work.
export HOME=$work TUF_ROOT=$work/.sigstore-none SIGSTORE_NO_CACHE=1 DOCKER_CONFIG=$work/.docker-none
export COSIGN_PASSWORD="sample password"
unset COSIGN_REPOSITORY

# start_refreg DIR: refreg on a free loopback port (retried on a clash); sets REFREG_PID, REFREG_HOST.
start_refreg() {
  local dir=$1 port try
  mkdir -p "$dir"
  for try in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$refreg" -address "127.0.0.1:$port" > "$dir/access.log" 2>&1 &
    REFREG_PID=$!
    REFREG_HOST=127.0.0.1:$port
    for _ in $(seq 200); do
      curl -fs "http://$REFREG_HOST/v2/" >/dev/null 2>&1 && return 0
      kill -0 "$REFREG_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill "$REFREG_PID" 2>/dev/null; wait "$REFREG_PID" 2>/dev/null || true; REFREG_PID=""
  done
  echo "refreg did not start" >&2; return 1
}

# Key pair, a signing config with no Rekor/TSA/Fulcio/OIDC, an empty trusted root.
out=$here/common
rm -rf "$out" && mkdir -p "$out"
(cd "$out" && "$cosign" generate-key-pair >/dev/null 2>&1)
"$cosign" signing-config create --out "$out/signing-config.json"
"$cosign" trusted-root create --out "$out/trusted-root.json"
cat > "$out/predicate-slsa1.json" <<'EOF'
{
  "buildDefinition": {
    "buildType": "https://sigil.example/build/v1",
    "externalParameters": {"source": "git+https://example.com/sample/repo@refs/heads/main"},
    "resolvedDependencies": [{"uri": "git+https://example.com/sample/repo@refs/heads/main", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}]
  },
  "runDetails": {"builder": {"id": "https://sigil.example/builder/v1"}, "metadata": {"invocationId": "sample-1"}}
}
EOF
"$cosign" version 2>&1 | awk '/GitVersion|GoVersion/' > "$out/cosign-version.txt"
cat "$top/.tools/cosign3/.deb-version" >> "$out/cosign-version.txt"

# mark LOG NAME: records where the registry's log ends before command NAME (scripts/benchlib.py).
mark() {
  printf '%s %s\n' "$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from benchlib import RequestLog; print(RequestLog(sys.argv[2]).mark())' "$top/scripts" "$1")" "$2" >> "$1.marks"
}

# record KIND HOST LOG: push the sample image, sign, attest, verify, then fetch everything.
record() {
  local kind=$1 host=$2 log=$3 dest=$here/$1 hex img
  rm -rf "$dest" && mkdir -p "$dest"
  hex=$(make_image "$work/img-$kind" "cosign 3 sample")
  push_image "$work/img-$kind" "$host" sample/signed v1
  img=$host/sample/signed@sha256:$hex
  echo "sha256:$hex" > "$dest/image-digest"
  local flags=(--key "$out/cosign.key" --signing-config "$out/signing-config.json" --trusted-root "$out/trusted-root.json"
    --allow-http-registry --yes)
  local vflags=(--key "$out/cosign.pub" --trusted-root "$out/trusted-root.json" --insecure-ignore-tlog --allow-http-registry)
  {
    mark "$log" "cosign sign"; "$cosign" sign "${flags[@]}" "$img"
    mark "$log" "cosign attest"; "$cosign" attest "${flags[@]}" --type slsaprovenance1 --predicate "$out/predicate-slsa1.json" "$img"
    mark "$log" "cosign verify"; "$cosign" verify "${vflags[@]}" "$img" > "$dest/cosign-verify.stdout.json"
    mark "$log" "cosign verify-attestation"
    "$cosign" verify-attestation "${vflags[@]}" --type slsaprovenance1 "$img" > "$dest/cosign-verify-attestation.stdout.json"
    mark "$log" "end"
  } 2> "$dest/cosign.stderr.txt"
  python3 "$here/fetch.py" "http://$host" sample/signed "sha256:$hex" "$dest"
  # The requests each command made, as the registry logged them (method and path).
  python3 - "$top/scripts" "$log" > "$dest/requests.txt" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from benchlib import RequestLog
log = RequestLog(sys.argv[2])
marks = [line.split(" ", 1) for line in open(sys.argv[2] + ".marks").read().splitlines()]
for (start, name), (end, _) in zip(marks, marks[1:]):
    reqs = log.since(int(start), int(end))
    print(f"== {name}: {len(reqs)} requests")
    print("\n".join(reqs))
EOF
}

mkdir -p "$work/dreg" "$work/refreg"
start_registry "$work/dreg"
record docker-registry "$REGISTRY_HOST" "$work/dreg/access.log"
start_refreg "$work/refreg"
record refreg "$REFREG_HOST" "$work/refreg/access.log"
date -u +%Y-%m-%dT%H:%M:%SZ > "$out/recorded-at.txt"
echo "recorded into $here" >&2
