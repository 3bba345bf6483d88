#!/usr/bin/env bash
# The main job end to end: build sigil, make a small image, then generate keys, sign, verify
# and list attachments, first in a local OCI layout (no registry), then on a throwaway local
# registry when Debian's docker-registry is installed, then keyless with a transparency log
# against the local Sigstore stack (scripts/sigstack/). Everything is written under demo-out/.
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

. "$root/scripts/lib.sh"
make_image image "sigil demo" >/dev/null

# The example key pair (for examples and tests only); its password is beside it.
export SIGIL_PASSWORD; SIGIL_PASSWORD=$(cat "$root/keys-example/PASSWORD")
echo "== OCI layout, no registry ==" >&2
step "$sigil" generate-key-pair --output-key-prefix fresh
step "$sigil" sign --tlog-upload=false --key "$root/keys-example/example.key" -a env=demo oci:image:v1
step "$sigil" verify --insecure-ignore-tlog --key "$root/keys-example/example.pub" -a env=demo oci:image:v1
step "$sigil" tree oci:image:v1
set +e
"$sigil" verify --insecure-ignore-tlog --key fresh.pub oci:image:v1 >/dev/null 2>&1; rc=$?
set -e
echo "verify with another key exits $rc (12 = no matching signature)" >&2

if [ -x /usr/bin/docker-registry ]; then
  echo "== throwaway local registry ==" >&2
  start_registry "$out/registry"
  trap stop_registry EXIT
  push_image image "$REGISTRY_HOST" demo/hello v1
  img="$REGISTRY_HOST/demo/hello:v1"
  # cosign 3's format (a Sigstore bundle as an OCI referrer), then cosign 2's (.sig tag).
  step "$sigil" sign --tlog-upload=false --allow-http-registry --key "$root/keys-example/example.key" "$img"
  step "$sigil" sign --format legacy --tlog-upload=false --allow-http-registry --key "$root/keys-example/example.key" "$img"
  step "$sigil" verify --insecure-ignore-tlog --allow-http-registry --key "$root/keys-example/example.pub" "$img"
  step "$sigil" tree --allow-http-registry "$img"
  cosign3="$root/.tools/cosign3/usr/bin/cosign"
  if [ -x "$cosign3" ]; then
    "$cosign3" trusted-root create --out "$out/empty-trusted-root.json"
    step env TUF_ROOT="$out/.sigstore" "$cosign3" verify --key "$root/keys-example/example.pub" \
      --trusted-root "$out/empty-trusted-root.json" --insecure-ignore-tlog --allow-http-registry "$img" >/dev/null
  fi
  cosign="$root/.tools/cosign/usr/bin/cosign"
  if [ -x "$cosign" ]; then
    step env TUF_ROOT="$out/.sigstore" "$cosign" verify --key "$root/keys-example/example.pub" --insecure-ignore-tlog=true --allow-http-registry "$img" >/dev/null
  fi

  # A release pipeline's job: keyless signing, recorded in a transparency log, against a whole
  # Sigstore instance on loopback (Rekor v2, Fulcio, the timestamp authority, a CT log, an OIDC
  # issuer standing in for the CI's), then verification by identity, offline.
  echo "== keyless, with Rekor, Fulcio and a timestamp authority (local Sigstore stack) ==" >&2
  stack="$root/scripts/sigstack/sigstack.sh"
  export SIGSTACK_RUN="$out/sigstack"
  trap 'bash "$stack" stop >/dev/null 2>&1; bash "$stack" clean >/dev/null 2>&1; stop_registry' EXIT
  eval "$(bash "$stack" start --free-ports)"
  token=$("$SIGSTACK_TOKEN_CMD" release-bot@example.com)
  sigstore=(--signing-config "$SIGSTACK_SIGNING_CONFIG" --trusted-root "$SIGSTACK_TRUSTED_ROOT")
  identity=(--certificate-identity release-bot@example.com --certificate-oidc-issuer "$SIGSTACK_OIDC_ISSUER")
  echo "demo artifact" > app.tar.gz
  SIGSTORE_ID_TOKEN=$token step "$sigil" sign --allow-http-registry "${sigstore[@]}" "$img"
  SIGSTORE_ID_TOKEN=$token step "$sigil" sign-blob "${sigstore[@]}" --bundle app.tar.gz.sigstore.json app.tar.gz
  step "$sigil" verify --allow-http-registry "${identity[@]}" --trusted-root "$SIGSTACK_TRUSTED_ROOT" "$img"
  step "$sigil" verify-blob "${identity[@]}" --trusted-root "$SIGSTACK_TRUSTED_ROOT" --bundle app.tar.gz.sigstore.json app.tar.gz
  if [ -x "$cosign3" ]; then
    step "$cosign3" verify --allow-http-registry "${identity[@]}" --trusted-root "$SIGSTACK_TRUSTED_ROOT" "$img" >/dev/null
  fi
  # With a key, recorded in the log too: verified with no --insecure flag.
  step "$sigil" sign --allow-http-registry "${sigstore[@]}" --key "$root/keys-example/example.key" "$img"
  step "$sigil" verify --allow-http-registry --trusted-root "$SIGSTACK_TRUSTED_ROOT" --key "$root/keys-example/example.pub" "$img"
else
  echo "docker-registry is not installed: skipped the registry part (scripts/setup.sh installs it)" >&2
fi
echo "demo: done (files in demo-out/)" >&2
