#!/bin/sh
# Regenerates the in-toto statement and DSSE envelope vectors in this directory (see
# README.md for what each file is and what a verifier must say about it).
#
# Independent of sigil on purpose: the statements are written here as literal JSON, the PAE
# is built here with printf, and every signature is made by cosign (`sign-blob` over the
# bytes given, or `attest-blob` for the envelope cosign builds itself). Signing keys are the
# test keys already in the repository: testdata/keys/cosign-p256.vector (password
# "vector-password") and keys-example/example.key (password in keys-example/PASSWORD).
#
# ECDSA signatures are randomised, so a re-run gives different signature bytes (and
# different envelope digests) with the same meaning; everything else is byte-identical.
#
#   sh testdata/intoto/make.sh        (needs cosign: bash scripts/setup.sh installs it)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cosign=${COSIGN:-$root/.tools/cosign/usr/bin/cosign}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# cosign offline: no TUF, no transparency log, no Docker config.
export HOME="$work" TUF_ROOT="$work/.sigstore" SIGSTORE_NO_CACHE=1 DOCKER_CONFIG="$work/.docker"
unset COSIGN_REPOSITORY COSIGN_PASSWORD || true

sed -n '/-----BEGIN/,$p' "$root/testdata/keys/cosign-p256.vector" >"$work/signer.key"
signer_password=vector-password
cp "$root/keys-example/example.key" "$work/other.key"
other_password=$(cat "$root/keys-example/PASSWORD")
cp "$root/testdata/keys/cosign-p256.pub" "$here/signer.pub"
cp "$root/keys-example/example.pub" "$here/other.pub"

cd "$here"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
b64() { base64 -w0 "$1"; }

# sign KEY PASSWORD FILE: cosign's base64 signature over the bytes of FILE.
sign() {
    COSIGN_PASSWORD=$2 "$cosign" sign-blob --key "$1" --tlog-upload=false --yes \
        --output-signature "$work/sig" "$3" >/dev/null 2>&1
    cat "$work/sig"
}

# pae TYPE FILE: DSSE v1 pre-authentication encoding of FILE's bytes, into $work/pae.
pae() {
    printf 'DSSEv1 %d %s %d ' "${#1}" "$1" "$(size "$2")" >"$work/pae"
    cat "$2" >>"$work/pae"
}

# envelope TYPE PAYLOAD-FILE SIG...: a DSSE envelope as cosign serialises it.
envelope() {
    t=$1 p=$2
    shift 2
    sigs=""
    for s in "$@"; do
        sigs="$sigs${sigs:+,}{\"keyid\":\"\",\"sig\":\"$s\"}"
    done
    printf '{"payloadType":"%s","payload":"%s","signatures":[%s]}' "$t" "$(b64 "$p")" "$sigs"
}

# signed_envelope TYPE PAYLOAD-FILE: one signature by signer.key over the PAE.
signed_envelope() {
    pae "$1" "$2"
    envelope "$1" "$2" "$(sign "$work/signer.key" "$signer_password" "$work/pae")"
}

intoto=application/vnd.in-toto+json

# The image the statements are about: one layer, one config, one OCI manifest. Tests push
# these three blobs as they are; the manifest's digest is the subject digest.
printf 'sigil in-toto test vectors: image layer\n' >image-layer.bin
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
    "$(sha image-layer.bin)" >image-config.json
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"sha256:%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":%d,"digest":"sha256:%s"}]}' \
    "$(size image-config.json)" "$(sha image-config.json)" "$(size image-layer.bin)" "$(sha image-layer.bin)" \
    >image-manifest.json
printf 'sha256:%s\n' "$(sha image-manifest.json)" >image-digest
hex=$(sha image-manifest.json)

predicate='{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{"ref":"refs/heads/main"},"resolvedDependencies":[{"uri":"git+https://github.com/org/repo@refs/heads/main","digest":{"gitCommit":"0123abcd"}}]},"runDetails":{"builder":{"id":"https://example.com/builder"}}}'
subject="[{\"name\":\"registry.example/intoto/app\",\"digest\":{\"sha256\":\"$hex\"}}]"
statement() { # TYPE SUBJECT-JSON-OR-EMPTY BUILDER
    printf '{"_type":"%s",' "$1"
    if [ -n "$2" ]; then printf '"subject":%s,' "$2"; fi
    printf '"predicateType":"https://slsa.dev/provenance/v1","predicate":%s}' \
        "$(printf '%s' "$predicate" | sed "s|https://example.com/builder|$3|")"
}

statement https://in-toto.io/Statement/v1 "$subject" https://example.com/builder >statement-v1.json
statement https://in-toto.io/Statement/v2 "$subject" https://example.com/builder >statement-unknown-type.json
statement https://in-toto.io/Statement/v1 "" https://example.com/builder >statement-no-subject.json
statement https://in-toto.io/Statement/v1 "$subject" https://evil.example/builder >"$work/evil.json"

# Valid: Statement v1 in an envelope signed over the PAE.
signed_envelope "$intoto" statement-v1.json >envelope-v1.json

# Valid: what cosign's own attest-blob writes (Statement v0.1) for the image manifest. cosign
# 2.5 prints the signed envelope on stdout; its --output-attestation file gets the unsigned
# statement.
printf '%s' "$predicate" >"$work/predicate.json"
printf '%s' "$(COSIGN_PASSWORD=$signer_password "$cosign" attest-blob --key "$work/signer.key" \
    --tlog-upload=false --yes --type slsaprovenance1 --predicate "$work/predicate.json" \
    --output-attestation "$work/unsigned.json" image-manifest.json 2>/dev/null)" >envelope-v01.json
jq -r .payload envelope-v01.json | base64 -d >statement-v01.json

# Correctly signed, refused for what they say.
signed_envelope "$intoto" statement-unknown-type.json >envelope-unknown-type.json
signed_envelope "$intoto" statement-no-subject.json >envelope-no-subject.json
signed_envelope application/json statement-v1.json >envelope-payloadtype-json.json

# Signed over the bare payload instead of the PAE (a simple-signing habit).
envelope "$intoto" statement-v1.json "$(sign "$work/signer.key" "$signer_password" statement-v1.json)" \
    >envelope-sig-over-payload.json

# envelope-v1.json's signature with another payload (builder id changed).
envelope "$intoto" "$work/evil.json" "$(jq -r '.signatures[0].sig' envelope-v1.json)" >envelope-tampered-payload.json

# Two signatures over the same PAE: other.key first, then signer.key.
pae "$intoto" statement-v1.json
envelope "$intoto" statement-v1.json \
    "$(sign "$work/other.key" "$other_password" "$work/pae")" \
    "$(sign "$work/signer.key" "$signer_password" "$work/pae")" >envelope-two-signatures.json

printf 'this is not a DSSE envelope\n' >not-json.txt

chmod 644 ./*.json ./*.txt ./*.pub ./*.bin image-digest
echo "vectors written to $here (subject sha256:$hex)"
