#!/usr/bin/env bash
# The main job end to end: build sigil, make a small image, then generate keys, sign, verify
# and list attachments, first in a local OCI layout (no registry), then on a throwaway local
# registry when Debian's docker-registry is installed. Everything is written under demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null || echo "demo: setup failed; continuing with what is installed" >&2
cargo build --locked --release -q
sigil="$CARGO_TARGET_DIR/release/sigil"
out="$root/demo-out"
rm -rf "$out"; mkdir -p "$out"; cd "$out"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; "$@"; }

# A one-layer image in an OCI layout, made with nothing but coreutils.
put_blob() { local d; d=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1); printf '%s' "$2" > "$1/blobs/sha256/$d"; echo "$d"; }
mkdir -p image/blobs/sha256
echo '{"imageLayoutVersion":"1.0.0"}' > image/oci-layout
layer=$(put_blob image "hello from sigil's demo")
config=$(put_blob image "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]},\"config\":{}}")
manifest_json="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":$(wc -c < image/blobs/sha256/$config),\"digest\":\"sha256:$config\"},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":$(wc -c < image/blobs/sha256/$layer),\"digest\":\"sha256:$layer\"}]}"
manifest=$(put_blob image "$manifest_json")
echo "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":${#manifest_json},\"digest\":\"sha256:$manifest\",\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" > image/index.json

# The example key pair (for examples and tests only); its password is beside it.
export SIGIL_PASSWORD; SIGIL_PASSWORD=$(cat "$root/keys-example/PASSWORD")
echo "== OCI layout, no registry ==" >&2
step "$sigil" generate-key-pair --output-key-prefix fresh
step "$sigil" sign --key "$root/keys-example/example.key" -a env=demo oci:image:v1
step "$sigil" verify --key "$root/keys-example/example.pub" -a env=demo oci:image:v1
step "$sigil" tree oci:image:v1
set +e
"$sigil" verify --key fresh.pub oci:image:v1 >/dev/null 2>&1; rc=$?
set -e
echo "verify with another key exits $rc (12 = no matching signature)" >&2

if [ -x /usr/bin/docker-registry ]; then
  echo "== throwaway local registry ==" >&2
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p registry
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$out/registry/data" "$port" > registry/config.yml
  /usr/bin/docker-registry serve registry/config.yml >registry/log 2>&1 &
  regpid=$!
  trap 'kill $regpid 2>/dev/null; wait $regpid 2>/dev/null' EXIT
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  base="http://127.0.0.1:$port/v2/demo/hello"
  for b in "$layer" "$config"; do
    # Distribution's two-step upload: POST opens a session, PUT ?digest= completes it.
    loc=$(curl -fsS -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -X PUT --data-binary "@image/blobs/sha256/$b" -H 'Content-Type: application/octet-stream' "$loc${sep}digest=sha256:$b" >/dev/null
  done
  curl -fsS -X PUT --data-binary "@image/blobs/sha256/$manifest" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' "$base/manifests/v1" >/dev/null
  img="127.0.0.1:$port/demo/hello:v1"
  step "$sigil" sign --allow-http-registry --key "$root/keys-example/example.key" "$img"
  step "$sigil" verify --allow-http-registry --key "$root/keys-example/example.pub" "$img"
  step "$sigil" tree --allow-http-registry "$img"
  cosign="$root/.tools/cosign/usr/bin/cosign"
  if [ -x "$cosign" ]; then
    step env TUF_ROOT="$out/.sigstore" "$cosign" verify --key "$root/keys-example/example.pub" --insecure-ignore-tlog=true --allow-http-registry "$img" >/dev/null
  fi
else
  echo "docker-registry is not installed: skipped the registry part (scripts/setup.sh installs it)" >&2
fi
echo "demo: done (files in demo-out/)" >&2
