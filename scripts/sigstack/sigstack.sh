#!/usr/bin/env bash
# Provenance: copied on 2026-11-28 from /work/shared/sigstack/sigstack.sh (sha256 40b537c5f08b…),
# the shared sigstack tool; sigil owns this copy from here on (see README.md next to it).
# sigstack.sh - a real Sigstore stack on loopback, built from Debian unstable's Go source packages.
#
#   sigstack.sh setup [--force]     private apt config for unstable (mirror from this machine's sources),
#                                   download + unpack the Debian packages, write shims/patches, build
#                                   the binaries, fetch cosign 3. Does nothing when already current.
#   sigstack.sh setup-refreg        only refreg (go-containerregistry's registry with the OCI 1.1
#                                   referrers API): the apt closure of its -dev package and the Go
#                                   toolchain, no services, no cosign. Prints the binary's path.
#                                   Does nothing when already current.
#   sigstack.sh start [options]     start OIDC issuer, Rekor v2, Rekor v1 (+ Trillian), TSA, Fulcio, CT log;
#                                   prints `export` lines
#       --free-ports                pick free loopback ports (retried on a clash); otherwise fixed ports:
#       --oidc-port N (3930)  --rekor-port N (3900; N..N+2)  --tsa-port N (3910; N+1 metrics)
#       --fulcio-port N (3920; N..N+2)  --ct-port N (3940; N+1 monitoring)  --no-ct (no CT log)
#       --rekor-v1-port N (3950; N+1 metrics, N+2 Trillian gRPC)
#       --rekor-checkpoint-interval D (2s)  --rekor-batch-max-age D (250ms): how often Rekor v2
#                                   publishes a checkpoint and seals a batch (a write waits for both)
#       --rekor-await-poll D (1s)   how often Rekor v2 looks for the checkpoint covering a new entry
#       --ct-period MS (1000)       how often the CT log sequences (a Fulcio certificate waits for it)
#   sigstack.sh env                 shell exports for the running stack: eval "$(sigstack.sh env)"
#   sigstack.sh token [email] [ttl] print an OIDC ID token from the local issuer (aud=sigstore)
#   sigstack.sh status              recorded services and whether they are alive
#   sigstack.sh stop                stop exactly the processes that `start` recorded
#   sigstack.sh e2e [image@digest]  cosign 3 sign + verify (key, keyless, blob; Rekor v2 and v1) on a throwaway registry
#   sigstack.sh clean               delete the run directory (keys, logs, Rekor tiles, CT log; Rekor v1 keeps its log in memory)
#   sigstack.sh prune               delete what only a rebuild needs (unpacked tree, Go cache, debs): ~4.5 GB
#   sigstack.sh prereqs [--install] list (or apt-get install) the Debian packages this script needs
#
# Env: SIGSTACK_DIR  state: apt state, debs, unpacked tree, Go cache, binaries, runs
#                    (default ${XDG_CACHE_HOME:-$HOME/.cache}/sigstack)
#      SIGSTACK_RUN  run directory of one stack (default $SIGSTACK_DIR/run); one per concurrent stack
#      COSIGN        cosign 3 binary (default: unstable's, unpacked under $SIGSTACK_DIR/cosign)
# Installs nothing system-wide (except `prereqs --install`); stops only the processes it started,
# identified by PID, start time and command line.
set -euo pipefail

abspath() { case $1 in /*) printf '%s\n' "$1";; *) printf '%s/%s\n' "$PWD" "$1";; esac; }
SELF=$(abspath "$0")
TOP=$(abspath "${SIGSTACK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sigstack}")
RUN=$(abspath "${SIGSTACK_RUN:-$TOP/run}")
APT_SID=$TOP/apt-sid           # private apt configuration + lists for Debian unstable
ROOT=$TOP/root                 # unpacked -dev debs and the Go toolchain (build only)
OVL=$TOP/overlay               # shims (GOPATH overlay) + patched files (go -overlay)
BIN=$TOP/bin
OUT=$TOP/out
LIB=$TOP/lib
TMPD=$TOP/tmp
GOCACHE_DIR=$TOP/gocache
COSIGN=${COSIGN:-$TOP/cosign/usr/bin/cosign}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
BINS="rekor-server-posix timestamp-server fulcio sunlight refreg rekor-server trillian-mem"
# roots of the closure; golang-go pulls in unstable's default toolchain (golang-1.NN-go/-src)
SRC_PKGS="golang-github-sigstore-rekor-tiles-dev golang-github-sigstore-fulcio-dev golang-github-sigstore-timestamp-authority-dev \
golang-github-transparency-dev-tessera-dev golang-filippo-sunlight-dev golang-github-asaskevich-govalidator-dev \
golang-github-google-go-containerregistry-dev golang-github-sigstore-rekor-dev golang-github-google-trillian-dev golang-go"
MW_PKG=golang-github-grpc-ecosystem-go-grpc-middleware-dev   # v1 API, from bookworm (unstable has v2 only)
APT_OPTS=(); [ "$(id -u)" = 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)

log() { printf '[sigstack] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  if [ "${STARTING:-0}" = 1 ]; then STARTING=0; log "start failed; stopping what was started"; stop; fi
  exit 1
}

# ---------------------------------------------------------------- prerequisites and apt
need_cmds() { # tool:package ... -> prints the packages of the missing tools
  local t
  for t in "$@"; do
    case ${t%%:*} in
      libc-dev) [ -f /usr/include/stdlib.h ] || echo "${t#*:}";;
      cryptography) python3 -c 'import cryptography' 2>/dev/null || echo "${t#*:}";;
      keyring) [ -r "$KEYRING" ] || echo "${t#*:}";;
      *) command -v "${t%%:*}" >/dev/null 2>&1 || echo "${t#*:}";;
    esac
  done | sort -u | tr '\n' ' '
}
PREREQS_SETUP="apt-get:apt dpkg-deb:dpkg python3:python3 gcc:gcc libc-dev:libc6-dev keyring:debian-archive-keyring flock:util-linux"
PREREQS_REFREG="apt-get:apt dpkg-deb:dpkg keyring:debian-archive-keyring flock:util-linux"
PREREQS_RUN="python3:python3 cryptography:python3-cryptography openssl:openssl curl:curl timeout:coreutils"
check_prereqs() { # setup|refreg|run
  local m
  case $1 in
    setup) m=$(need_cmds $PREREQS_SETUP $PREREQS_RUN);;
    refreg) m=$(need_cmds $PREREQS_REFREG);;
    *) m=$(need_cmds $PREREQS_RUN);;
  esac
  [ -z "$m" ] || die "missing Debian packages: $m-> run: apt-get install -y --no-install-recommends $m(or: $0 prereqs --install)"
}
prereqs() {
  local m; m=$(need_cmds $PREREQS_SETUP $PREREQS_RUN)
  if [ -z "$m" ]; then log "all prerequisites present"; return 0; fi
  if [ "${1:-}" = --install ]; then
    apt-get -q update && apt-get install -y --no-install-recommends $m
  else
    echo "apt-get install -y --no-install-recommends $m"
  fi
}

# The Debian mirror this machine already uses (deb822 URIs: first, then one-line sources.list); never a fixed host.
debian_mirror() {
  local m=""
  [ -r /etc/apt/sources.list.d/debian.sources ] && \
    m=$(awk 'tolower($1)=="uris:" {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' /etc/apt/sources.list.d/debian.sources)
  [ -z "$m" ] && [ -r /etc/apt/sources.list ] && \
    m=$(awk '$1=="deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\// && $i !~ /security/) {print $i; exit}}' /etc/apt/sources.list)
  [ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources (URIs:) or /etc/apt/sources.list"
  printf '%s\n' "${m%/}"
}

sid_apt() { # apt-get|apt-cache with the private unstable configuration only (system sources and pins left out)
  local cmd=$1; shift
  "$cmd" -o Dir::Etc::sourcelist="$APT_SID/etc/sources.list" -o Dir::Etc::sourceparts="$APT_SID/etc/sources.list.d" \
    -o Dir::Etc::preferences="$APT_SID/etc/preferences" -o Dir::Etc::preferencesparts="$APT_SID/etc/preferences.d" \
    -o Dir::State::Lists="$APT_SID/lists" -o Dir::Cache="$APT_SID/cache" -o Debug::NoLocking=1 "${APT_OPTS[@]}" "$@"
}

sid_update() {
  log "apt-get update for unstable ($(awk '{print $3}' "$APT_SID/etc/sources.list"))"
  sid_apt apt-get -q update > "$TOP/logs/apt-update-sid.log" 2>&1 || die "apt-get update for unstable failed, see $TOP/logs/apt-update-sid.log"
  ls "$APT_SID"/lists/*_sid_main_binary-*_Packages* >/dev/null 2>&1 || die "no unstable package list after apt-get update, see $TOP/logs/apt-update-sid.log"
  touch "$APT_SID/updated"
}

make_sid_apt() { # once: a private apt config for unstable under $APT_SID, then one apt-get update
  [ -f "$APT_SID/updated" ] && return 0
  [ -r "$KEYRING" ] || die "$KEYRING missing: apt-get install debian-archive-keyring"
  mkdir -p "$TOP/logs" "$APT_SID"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
  echo "deb [signed-by=$KEYRING] $(debian_mirror) sid main" > "$APT_SID/etc/sources.list"
  sid_update
}

sid_download() { # dir pkg...  (a package gone from unstable since the last update: refresh the lists once, retry)
  local d=$1; shift
  ( cd "$d" && sid_apt apt-get -q download "$@" ) >> "$TOP/logs/download.log" 2>&1 && return 0
  [ "${SID_REFRESHED:-0}" = 1 ] && return 1
  log "download from unstable failed; refreshing its package lists once"; SID_REFRESHED=1
  sid_update
  ( cd "$d" && sid_apt apt-get -q download "$@" ) >> "$TOP/logs/download.log" 2>&1
}

sys_download() { # pkg version-regex dir: download through this machine's own apt (apt-get update first if needed)
  local p=$1 re=$2 d=$3 v
  v=$(apt-cache show "$p" 2>/dev/null | awk -v re="^$re" '$1=="Version:" && $2 ~ re {print $2; exit}')
  if [ -z "$v" ]; then
    [ "$(id -u)" = 0 ] || die "this machine's apt lists have no $p $re; run 'apt-get update' as root"
    log "apt-get update (this machine's sources, for $p)"
    apt-get -q update >> "$TOP/logs/apt-update-system.log" 2>&1 || die "apt-get update failed, see $TOP/logs/apt-update-system.log"
    v=$(apt-cache show "$p" 2>/dev/null | awk -v re="^$re" '$1=="Version:" && $2 ~ re {print $2; exit}')
    [ -n "$v" ] || die "no $p matching $re in this machine's apt sources (Debian 12 bookworm has it)"
  fi
  mkdir -p "$d"
  ( cd "$d" && apt-get "${APT_OPTS[@]}" -q download "$p=$v" ) >> "$TOP/logs/download.log" 2>&1 || die "could not download $p=$v, see $TOP/logs/download.log"
}

fetch_cosign() { # cosign 3.x from unstable, unpacked under $TOP/cosign
  [ -x "$TOP/cosign/usr/bin/cosign" ] && return 0
  mkdir -p "$TOP/logs" "$TOP/cosign-deb"; make_sid_apt
  rm -f "$TOP"/cosign-deb/*.deb
  sid_download "$TOP/cosign-deb" cosign || die "could not download cosign from unstable, see $TOP/logs/download.log"
  rm -rf "$TOP/cosign.tmp"; dpkg-deb -x "$TOP"/cosign-deb/cosign_*.deb "$TOP/cosign.tmp" && rm -rf "$TOP/cosign" && mv "$TOP/cosign.tmp" "$TOP/cosign"
  local v; v=$(ls "$TOP"/cosign-deb/cosign_*.deb); v=${v##*/cosign_}; v=${v%%_*}   # Debian's binary says "devel"
  echo "$v" > "$TOP/cosign/.deb-version"
  case $v in 3.*) log "cosign $v from unstable";; *) log "WARNING: unstable's cosign is $v, not 3.x";; esac
}

fetch_registry() { # prints the path of Debian's docker-registry (bookworm's, unpacked under $TOP/registry)
  local r=$TOP/registry/usr/bin/docker-registry
  if [ ! -x "$r" ]; then
    rm -f "$TOP"/registry-deb/docker-registry_*.deb
    if ( sys_download docker-registry '2[.]' "$TOP/registry-deb" ) >&2; then
      rm -rf "$TOP/registry.tmp"; dpkg-deb -x "$TOP"/registry-deb/docker-registry_*.deb "$TOP/registry.tmp" && rm -rf "$TOP/registry" && mv "$TOP/registry.tmp" "$TOP/registry"
    elif command -v docker-registry >/dev/null; then
      r=$(command -v docker-registry)
    else
      die "no docker-registry"
    fi
  fi
  printf '%s\n' "$r"
}

# ---------------------------------------------------------------- build
go_env() {
  local goroot
  goroot=$(ls -d "$ROOT"/usr/lib/go-1.* 2>/dev/null | sort -V | tail -1)
  [ -x "$goroot/bin/go" ] || die "Go toolchain not unpacked; run setup"
  export GOROOT=$goroot PATH=$goroot/bin:$PATH GOPATH=$ROOT/usr/share/gocode GO111MODULE=off \
         GOCACHE=$GOCACHE_DIR GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 GOTELEMETRY=off GOPROXY=off
}

write_shims() {
  local S=$OVL/gopath/src
  mkdir -p "$S/chainguard.dev/go-grpc-kit/pkg/duplex" "$S/goa.design/goa/v3/grpc/middleware" "$S/github.com/PaesslerAG/jsonpath"
  printf 'module chainguard.dev/go-grpc-kit\n\ngo 1.22\n' > "$S/chainguard.dev/go-grpc-kit/go.mod"
  printf 'module goa.design/goa/v3\n\ngo 1.22\n' > "$S/goa.design/goa/v3/go.mod"
  printf 'module github.com/PaesslerAG/jsonpath\n\ngo 1.22\n' > "$S/github.com/PaesslerAG/jsonpath/go.mod"
  cat > "$S/chainguard.dev/go-grpc-kit/pkg/duplex/duplex.go" <<'EOF'
// Package duplex is a LOCAL SHIM (sigstack) for chainguard.dev/go-grpc-kit/pkg/duplex,
// which is not packaged in Debian. It compiles, but duplex mode (port == grpc-port)
// is unsupported: run fulcio with distinct --port and --grpc-port.
package duplex

import (
	"context"
	"errors"
	"net"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

type Duplex struct {
	Server *grpc.Server
	MUX    *runtime.ServeMux
}

func New(port int, opts ...interface{}) *Duplex {
	var sopts []grpc.ServerOption
	var mopts []runtime.ServeMuxOption
	for _, o := range opts {
		switch v := o.(type) {
		case grpc.ServerOption:
			sopts = append(sopts, v)
		case runtime.ServeMuxOption:
			mopts = append(mopts, v)
		}
	}
	return &Duplex{Server: grpc.NewServer(sopts...), MUX: runtime.NewServeMux(mopts...)}
}

func (d *Duplex) RegisterHandler(ctx context.Context, fn func(context.Context, *runtime.ServeMux, string, []grpc.DialOption) error) error {
	return nil
}

func (d *Duplex) RegisterListenAndServeMetrics(port int, enablePprof bool) {}

func (d *Duplex) Serve(ctx context.Context, lis net.Listener) error {
	return errors.New("duplex mode not available in this Debian-based build (shim); use different --port and --grpc-port")
}
EOF
  cat > "$S/goa.design/goa/v3/grpc/middleware/requestid.go" <<'EOF'
// Package middleware is a LOCAL SHIM (sigstack) for the part of
// goa.design/goa/v3/grpc/middleware that fulcio uses (goa is not packaged in Debian).
package middleware

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

const RequestIDMetadataKey = "request-id"

type requestIDOption struct {
	useXRequestID bool
	xLimit        int
}

type RequestIDOption func(*requestIDOption) *requestIDOption

func UseXRequestIDMetadataOption(f bool) RequestIDOption {
	return func(o *requestIDOption) *requestIDOption { o.useXRequestID = f; return o }
}

func XRequestMetadataLimitOption(limit int) RequestIDOption {
	return func(o *requestIDOption) *requestIDOption { o.xLimit = limit; return o }
}

func UnaryRequestID(options ...RequestIDOption) grpc.UnaryServerInterceptor {
	o := &requestIDOption{}
	for _, opt := range options {
		o = opt(o)
	}
	return func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
		md, ok := metadata.FromIncomingContext(ctx)
		if !ok {
			md = metadata.MD{}
		} else {
			md = md.Copy()
		}
		id := ""
		if o.useXRequestID {
			if v := md.Get("x-request-id"); len(v) > 0 && v[0] != "" {
				id = v[0]
				if o.xLimit > 0 && len(id) > o.xLimit {
					id = id[:o.xLimit]
				}
			}
		}
		if id == "" {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			id = base64.RawURLEncoding.EncodeToString(b)
		}
		md.Set(RequestIDMetadataKey, id)
		return handler(metadata.NewIncomingContext(ctx, md), req)
	}
}
EOF
  cat > "$S/github.com/PaesslerAG/jsonpath/jsonpath.go" <<'EOF'
// Package jsonpath is a LOCAL SHIM (sigstack) for github.com/PaesslerAG/jsonpath
// (not packaged in Debian). Supports only simple paths: $.a.b, $["a"]["b"], $.a[0].
package jsonpath

import (
	"fmt"
	"strconv"
	"strings"
)

func Get(path string, value interface{}) (interface{}, error) {
	p := strings.TrimSpace(path)
	if !strings.HasPrefix(p, "$") {
		return nil, fmt.Errorf("jsonpath shim: path must start with $: %q", path)
	}
	p = p[1:]
	cur := value
	for len(p) > 0 {
		var key string
		idx := -1
		switch {
		case p[0] == '.':
			p = p[1:]
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			key, p = p[:end], p[end:]
		case p[0] == '[':
			end := strings.Index(p, "]")
			if end < 0 {
				return nil, fmt.Errorf("jsonpath shim: bad path %q", path)
			}
			inner := strings.TrimSpace(p[1:end])
			p = p[end+1:]
			if n, err := strconv.Atoi(inner); err == nil {
				idx = n
			} else {
				key = strings.Trim(inner, `'"`)
			}
		default:
			return nil, fmt.Errorf("jsonpath shim: bad path %q", path)
		}
		if idx >= 0 {
			arr, ok := cur.([]interface{})
			if !ok || idx >= len(arr) {
				return nil, fmt.Errorf("jsonpath shim: index %d not found", idx)
			}
			cur = arr[idx]
			continue
		}
		m, ok := cur.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("unknown key %s", key)
		}
		v, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("unknown key %s", key)
		}
		cur = v
	}
	return cur, nil
}
EOF
}

# Patched copies of upstream files + //go:debug files, referenced by per-binary `go build -overlay` JSON.
write_patches() {
  local G=$ROOT/usr/share/gocode/src F=$OVL/files
  mkdir -p "$F"
  # Debian's sigstore package drops the azure + hashivault KMS providers: drop the blank imports.
  grep -v -E 'signature/kms/(azure|hashivault)"' "$G/github.com/sigstore/fulcio/pkg/ca/kmsca/kmsca.go" > "$F/fulcio_kmsca.go"
  grep -v -E 'signature/kms/(azure|hashivault)"' "$G/github.com/sigstore/fulcio/pkg/certmaker/certmaker.go" > "$F/fulcio_certmaker.go"
  # Bind fulcio's metrics listener to --host instead of all interfaces.
  sed 's|Addr:              fmt.Sprintf(":%v", viper.GetString("metrics-port")),|Addr:              fmt.Sprintf("%v:%v", viper.GetString("host"), viper.GetString("metrics-port")),|' \
    "$G/github.com/sigstore/fulcio/cmd/app/serve.go" > "$F/fulcio_serve.go"
  grep -q 'viper.GetString("host"), viper.GetString("metrics-port")' "$F/fulcio_serve.go" || die "fulcio metrics patch did not apply"
  # TSA hard-codes its Prometheus listener on ":2112" (all interfaces, fixed port): make it
  # 127.0.0.1 and configurable via $SIGSTACK_TSA_METRICS_ADDR.
  local T=$G/github.com/sigstore/timestamp-authority/v2/pkg/server
  sed 's|Addr:         ":2112",|Addr:         sigstackMetricsAddr(),|' "$T/prometheus.go" > "$F/tsa_prometheus.go"
  grep -q 'sigstackMetricsAddr()' "$F/tsa_prometheus.go" || die "TSA metrics patch did not apply"
  printf 'package server\n\nimport "os"\n\nfunc sigstackMetricsAddr() string {\n\tif a := os.Getenv("SIGSTACK_TSA_METRICS_ADDR"); a != "" {\n\t\treturn a\n\t}\n\treturn "127.0.0.1:2112"\n}\n' > "$F/tsa_metricsaddr.go"
  # Rekor v1 (rekor-server): Debian's golang-github-sigstore-rekor-dev ships no rpm/tuf entry types,
  # no home page, and neither go-redis nor gocloud.dev are packaged. Drop those (sigstack runs it
  # without search index and attestation storage), and bind its Prometheus listener, hard-coded on
  # ":2112" like the TSA's, to $SIGSTACK_REKOR_V1_METRICS_ADDR.
  python3 - "$G/github.com/sigstore/rekor" "$F" <<'PY' || die "Rekor v1 patches did not apply"
import re, sys
R, F = sys.argv[1:3]
def patch(src, dst, subs):
    t = open(f"{R}/{src}").read()
    for pat, rep in subs:
        t, n = re.subn(pat, rep, t, flags=re.M | re.S)
        if n == 0:
            sys.exit(f"patch {src}: no match for {pat!r}")
    open(f"{F}/{dst}", "w").write(t)
patch("cmd/rekor-server/app/serve.go", "rekorv1_serve.go", [
    (r'^\t(\w+ )?"github.com/sigstore/rekor/pkg/types/(rpm|tuf)(/v0\.0\.1)?"\n', ""),
    (r'^\t+(rpm|tuf)\.KIND:[^\n]*\n', ""),
    (r'Addr:(\s+)":2112",', r"Addr:\1sigstackMetricsAddr(),")])
patch("pkg/api/api.go", "rekorv1_api.go", [
    (r'^\t"github.com/redis/go-redis/v9"\n', ""),
    (r'^func NewRedisClient\(\) \*redis.Client \{.*?^\}\n', "")])
patch("pkg/indexstorage/indexstorage.go", "rekorv1_indexstorage.go", [
    (r'^\t"github.com/sigstore/rekor/pkg/indexstorage/redis"\n', ""),
    (r'^\tcase redis.ProviderType:\n[^\n]*\n', "")])
patch("pkg/generated/restapi/configure_rekor_server.go", "rekorv1_configure.go", [
    (r'^//go:embed rekorHomePage.html\nvar homePageBytes \[\]byte', 'var homePageBytes = []byte("<html><body>Rekor v1 (sigstack)</body></html>")')])
PY
  # api.go may still need crypto/tls only for the dropped redis client
  grep -q 'tls\.' <(grep -v '^import\|"crypto/tls"' "$F/rekorv1_api.go") || sed -i '/^\s*"crypto\/tls"$/d' "$F/rekorv1_api.go"
  cat > "$F/rekorv1_storage.go" <<'EOF'
// Package storage: sigstack's stand-in for Rekor's attestation storage (gocloud.dev is not in Debian).
package storage

import (
	"context"
	"errors"
)

type AttestationStorage interface {
	StoreAttestation(ctx context.Context, key string, attestation []byte) error
	FetchAttestation(ctx context.Context, key string) ([]byte, error)
}

func NewAttestationStorage() (AttestationStorage, error) {
	return nil, errors.New("attestation storage is not built in this Debian-based build (sigstack)")
}
EOF
  printf 'package app\n\nimport "os"\n\nfunc sigstackMetricsAddr() string {\n\tif a := os.Getenv("SIGSTACK_REKOR_V1_METRICS_ADDR"); a != "" {\n\t\treturn a\n\t}\n\treturn "127.0.0.1:2112"\n}\n' > "$F/rekorv1_metricsaddr.go"
  # rekor-tiles polls for the checkpoint that covers a new entry every second (hard-coded): make
  # the poll period configurable ($SIGSTACK_REKOR_AWAIT_POLL, default unchanged 1s) so that a
  # benchmark can shorten the service's own waits (`start --rekor-await-poll`).
  sed 's|tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 1\*time.Second)|tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, sigstackAwaitPoll())|' \
    "$G/github.com/sigstore/rekor-tiles/internal/tessera/tessera.go" > "$F/rekor_tessera.go"
  grep -q 'sigstackAwaitPoll()' "$F/rekor_tessera.go" || die "rekor-tiles awaiter patch did not apply"
  printf 'package tessera\n\nimport (\n\t"os"\n\t"time"\n)\n\nfunc sigstackAwaitPoll() time.Duration {\n\tif d, err := time.ParseDuration(os.Getenv("SIGSTACK_REKOR_AWAIT_POLL")); err == nil && d > 0 {\n\t\treturn d\n\t}\n\treturn time.Second\n}\n' > "$F/rekor_awaitpoll.go"
  # Sunlight only accepts serverAuth leaves; Fulcio certs are codeSigning (what sigstore CTFE is configured for).
  sed 's/\[\]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}/[]x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}/' \
    "$G/filippo.io/sunlight/internal/ctlog/http.go" > "$F/sunlight_http.go"
  grep -q "ExtKeyUsageCodeSigning" "$F/sunlight_http.go" || die "sunlight EKU patch did not apply"
  # GOPATH mode defaults GODEBUG to Go 1.20 semantics (e.g. old ServeMux without "POST /path"
  # patterns -> sunlight 404s). Restore each module's go.mod language version via //go:debug default=.
  local m v
  for m in fulcio:github.com/sigstore/fulcio rekor:github.com/sigstore/rekor-tiles tsa:github.com/sigstore/timestamp-authority/v2 sunlight:filippo.io/sunlight \
           rekorv1:github.com/sigstore/rekor trillian:github.com/google/trillian; do
    v=$(awk '/^go /{print $2; exit}' "$G/${m#*:}/go.mod" | cut -d. -f1,2)
    printf '//go:debug default=go%s\n\npackage main\n' "$v" > "$F/godebug_${m%%:*}.go"
  done
  python3 - "$G" "$F" "$OVL" <<'EOF'
import json, sys
G, F, O = sys.argv[1:4]
fu = G + "/github.com/sigstore/fulcio/"
ov = {
 "fulcio": {fu+"pkg/ca/kmsca/kmsca.go": F+"/fulcio_kmsca.go", fu+"pkg/certmaker/certmaker.go": F+"/fulcio_certmaker.go",
            fu+"cmd/app/serve.go": F+"/fulcio_serve.go", fu+"zz_sigstack_godebug.go": F+"/godebug_fulcio.go"},
 "rekor": {G+"/github.com/sigstore/rekor-tiles/cmd/rekor-server/posix/zz_sigstack_godebug.go": F+"/godebug_rekor.go",
           G+"/github.com/sigstore/rekor-tiles/internal/tessera/tessera.go": F+"/rekor_tessera.go",
           G+"/github.com/sigstore/rekor-tiles/internal/tessera/zz_sigstack_awaitpoll.go": F+"/rekor_awaitpoll.go"},
 "tsa": {G+"/github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server/zz_sigstack_godebug.go": F+"/godebug_tsa.go",
         G+"/github.com/sigstore/timestamp-authority/v2/pkg/server/prometheus.go": F+"/tsa_prometheus.go",
         G+"/github.com/sigstore/timestamp-authority/v2/pkg/server/zz_sigstack_metricsaddr.go": F+"/tsa_metricsaddr.go"},
 "sunlight": {G+"/filippo.io/sunlight/internal/ctlog/http.go": F+"/sunlight_http.go",
              G+"/filippo.io/sunlight/cmd/sunlight/zz_sigstack_godebug.go": F+"/godebug_sunlight.go"},
 "rekorv1": {G+"/github.com/sigstore/rekor/cmd/rekor-server/zz_sigstack_godebug.go": F+"/godebug_rekorv1.go",
             G+"/github.com/sigstore/rekor/cmd/rekor-server/app/serve.go": F+"/rekorv1_serve.go",
             G+"/github.com/sigstore/rekor/pkg/api/api.go": F+"/rekorv1_api.go",
             G+"/github.com/sigstore/rekor/pkg/indexstorage/indexstorage.go": F+"/rekorv1_indexstorage.go",
             G+"/github.com/sigstore/rekor/pkg/generated/restapi/configure_rekor_server.go": F+"/rekorv1_configure.go",
             G+"/github.com/sigstore/rekor/pkg/storage/storage.go": F+"/rekorv1_storage.go",
             G+"/github.com/sigstore/rekor/cmd/rekor-server/app/zz_sigstack_metricsaddr.go": F+"/rekorv1_metricsaddr.go"},
 "trillian": {O+"/trillian/src/trillian-mem/zz_sigstack_godebug.go": F+"/godebug_trillian.go"},
}
for k, v in ov.items():
    json.dump({"Replace": v}, open(f"{O}/overlay-{k}.json", "w"), indent=1)
EOF
}


deb_version() { # source-deb-name -> upstream version of the unpacked .deb (e.g. v1.8.8)
  local f; f=$(ls "$TOP"/debs/"$1"_*.deb 2>/dev/null | head -1); f=${f##*/}; f=${f#*_}; f=${f%%_*}; f=${f%-*}
  echo "v${f#*:}"
}


# go-containerregistry's in-memory registry with the OCI 1.1 referrers API (Debian's docker-registry 2.8 has none)
write_refreg() {
  mkdir -p "$OVL/refreg/src/refreg"
  cat > "$OVL/refreg/src/refreg/main.go" <<'EOF'
// refreg: go-containerregistry's in-memory registry with the OCI 1.1 referrers API enabled.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("address", "127.0.0.1:0", "listen address")
	flag.Parse()
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, registry.New(registry.WithReferrersSupport(true))))
}
EOF
}

# Trillian for Rekor v1 without a database: one process serving the admin + log gRPC APIs and
# running the sequencer (what trillian_log_server + trillian_log_signer do), on Trillian's own
# in-memory storage. The log lives as long as the process: every `start` begins an empty log.
write_trillian_mem() {
  mkdir -p "$OVL/trillian/src/trillian-mem"
  cat > "$OVL/trillian/src/trillian-mem/main.go" <<'EOF'
// trillian-mem (sigstack): a Trillian log server and log signer in one process, on Trillian's
// in-memory storage (storage/memory), for Rekor v1 on loopback. Nothing persists.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/admin"
	"github.com/google/trillian/server/interceptor"
	"github.com/google/trillian/storage/memory"
	"github.com/google/trillian/util/clock"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

func main() {
	addr := flag.String("rpc_endpoint", "127.0.0.1:8090", "gRPC listen address (admin + log API)")
	interval := flag.Duration("sequencer_interval", 100*time.Millisecond, "time between sequencer runs")
	batch := flag.Int("batch_size", 100, "leaves sequenced per run")
	verbose := flag.Bool("verbose", false, "log Trillian's info and warnings (every sequencer run), not only errors")
	flag.Parse()
	if !*verbose {
		kf := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(kf)
		_ = kf.Set("logtostderr", "false")
		_ = kf.Set("stderrthreshold", "ERROR")
		klog.SetOutput(io.Discard)
	}

	mf := monitoring.InertMetricFactory{}
	ts := memory.NewTreeStorage()
	registry := extension.Registry{
		AdminStorage:  memory.NewAdminStorage(ts),
		LogStorage:    memory.NewLogStorage(ts, mf),
		QuotaManager:  quota.Noop(),
		MetricFactory: mf,
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	gs := grpc.NewServer(grpc.UnaryInterceptor(interceptor.ErrorWrapper))
	trillian.RegisterTrillianAdminServer(gs, admin.New(registry, []trillian.TreeType{trillian.TreeType_LOG}))
	trillian.RegisterTrillianLogServer(gs, server.NewTrillianLogRPCServer(registry, clock.System))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	om := tlog.NewOperationManager(tlog.OperationInfo{
		Registry: registry, BatchSize: *batch, NumWorkers: 1, RunInterval: *interval, TimeSource: clock.System,
	}, tlog.NewSequencerManager(registry, 0))
	go om.OperationLoop(ctx)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; cancel(); gs.Stop() }()
	log.Printf("trillian-mem: admin + log gRPC on %s, in-memory storage, sequencer every %s", lis.Addr(), *interval)
	if err := gs.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
EOF
}

build_one() { # name importpath overlay-json|"" cgo extra-gopath version
  local name=$1 pkg=$2 ovl=$3 cgo=$4 gp=${5:-} ver=${6:-} s rc
  s=$(date +%s)
  ( go_env; [ -n "$gp" ] && export GOPATH=$gp:$GOPATH; export CGO_ENABLED=$cgo
    exec nice -n 10 go build -trimpath ${ovl:+-overlay="$ovl"} -ldflags="-X sigs.k8s.io/release-utils/version.gitVersion=$ver" \
      -o "$BIN/$name.new" "$pkg" ) > "$TOP/logs/build-$name.log" 2>&1 && rc=0 || rc=$?
  if [ $rc -eq 0 ]; then mv -f "$BIN/$name.new" "$BIN/$name"; fi
  log "build $name: rc=$rc in $(( $(date +%s) - s ))s (log: $TOP/logs/build-$name.log)"
  return $rc
}

build_stamp() { # what shapes the binaries: package roots, shims, patches, build flags (comments do not count)
  { echo "$SRC_PKGS $MW_PKG $BINS"; declare -f go_env write_shims write_patches write_refreg write_trillian_mem build_one; } | sha256sum | cut -c1-64
}
setup_current() { # binaries built from the current shims/patches, and cosign present
  local b; for b in $BINS; do [ -x "$BIN/$b" ] || return 1; done
  [ -x "$COSIGN" ] && [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$(build_stamp)" ]
}

setup() {
  local force=0
  case ${1:-} in --force) force=1;; "") ;; *) die "unknown setup option $1";; esac
  check_prereqs setup
  mkdir -p "$TOP"/{debs,logs,tmp} "$BIN" "$LIB"
  exec 9> "$TOP/.setup.lock"; flock 9     # one setup at a time per SIGSTACK_DIR
  if [ $force = 0 ] && setup_current; then write_oidc_helper; log "setup: up to date ($BIN)"; return 0; fi
  local t0; t0=$(date +%s)
  make_sid_apt
  # 1. the closure: golang-*-dev + toolchain, from unstable
  if [ ! -s "$TOP/want.txt" ] || [ "$APT_SID/updated" -nt "$TOP/want.txt" ] || [ "$(cat "$TOP/want.roots" 2>/dev/null)" != "$SRC_PKGS" ]; then
    sid_apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances $SRC_PKGS 2>/dev/null \
      | grep -v '^ ' | grep -E '^golang-(.*-dev|1\.[0-9]+-(go|src))$' | sort -u > "$TOP/want.txt.tmp"
    [ -s "$TOP/want.txt.tmp" ] || die "could not resolve the packages in unstable"
    mv "$TOP/want.txt.tmp" "$TOP/want.txt"; echo "$SRC_PKGS" > "$TOP/want.roots"
  fi
  log "$(wc -l < "$TOP/want.txt") Debian packages in the closure"
  # 2. download what is missing
  local missing=() p
  while read -r p; do ls "$TOP/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done < "$TOP/want.txt"
  if [ ${#missing[@]} -gt 0 ]; then
    log "downloading ${#missing[@]} debs from unstable"
    sid_download "$TOP/debs" "${missing[@]}" || die "download failed, see $TOP/logs/download.log"
  fi
  # go-grpc-middleware v1 (Fulcio uses the v1 API; unstable only has v2) from bookworm, through this machine's apt
  ls "$TOP/extra-debs/${MW_PKG}_1."*.deb >/dev/null 2>&1 || sys_download "$MW_PKG" '1[.]' "$TOP/extra-debs"
  fetch_cosign
  # 3. unpack (once per .deb)
  mkdir -p "$ROOT/.unpacked" "$OVL/gopath/src" "$GOCACHE_DIR"
  local d n=0
  for d in "$TOP"/debs/*.deb; do
    [ -e "$ROOT/.unpacked/${d##*/}" ] && continue
    dpkg-deb -x "$d" "$ROOT" && touch "$ROOT/.unpacked/${d##*/}"; n=$((n+1))
  done
  log "unpacked $n new debs"
  local mw=$OVL/gopath/src/github.com/grpc-ecosystem/go-grpc-middleware
  if [ ! -f "$mw/go.mod" ]; then
    local tmp; tmp=$(mktemp -d "$TMPD/mw.XXXX")
    dpkg-deb -x "$(ls "$TOP"/extra-debs/"${MW_PKG}"_1.*.deb | head -1)" "$tmp"
    mkdir -p "${mw%/*}"; rm -rf "$mw"; mv "$tmp/usr/share/gocode/src/github.com/grpc-ecosystem/go-grpc-middleware" "$mw"; rm -rf "$tmp"
  fi
  # 4. shims + patches + helpers
  write_shims; write_patches; write_oidc_helper; write_refreg; write_trillian_mem
  log "fetch+unpack+prepare took $(( $(date +%s) - t0 ))s"
  # 5. build
  local rc=0
  build_one rekor-server-posix github.com/sigstore/rekor-tiles/cmd/rekor-server/posix "$OVL/overlay-rekor.json" 0 "" "$(deb_version golang-github-sigstore-rekor-tiles-dev)" || rc=1
  build_one timestamp-server github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server "$OVL/overlay-tsa.json" 0 "" "$(deb_version golang-github-sigstore-timestamp-authority-dev)" || rc=1
  build_one fulcio github.com/sigstore/fulcio "$OVL/overlay-fulcio.json" 0 "$OVL/gopath" "$(deb_version golang-github-sigstore-fulcio-dev)" || rc=1
  build_one sunlight filippo.io/sunlight/cmd/sunlight "$OVL/overlay-sunlight.json" 1 "" "" || rc=1   # cgo: crawshaw sqlite
  build_one refreg refreg "" 0 "$OVL/refreg" "" || rc=1
  build_one rekor-server github.com/sigstore/rekor/cmd/rekor-server "$OVL/overlay-rekorv1.json" 0 "" "$(deb_version golang-github-sigstore-rekor-dev)" || rc=1
  build_one trillian-mem trillian-mem "$OVL/overlay-trillian.json" 0 "$OVL/trillian" "" || rc=1
  [ $rc -eq 0 ] || die "some builds failed"
  { ( go_env; go version )
    for p in golang-github-sigstore-rekor-tiles-dev golang-github-transparency-dev-tessera-dev golang-github-sigstore-fulcio-dev \
             golang-github-sigstore-timestamp-authority-dev golang-filippo-sunlight-dev golang-github-google-go-containerregistry-dev \
             golang-github-sigstore-rekor-dev golang-github-google-trillian-dev; do
      d=$(ls "$TOP"/debs/"${p}"_*.deb | head -1); d=${d##*/}; echo "$p ${d#*_}" | sed 's/_[^_]*\.deb$//'
    done
    echo "cosign $(cat "$TOP/cosign/.deb-version" 2>/dev/null || echo "(COSIGN=$COSIGN)")"
  } > "$TOP/versions.txt" || true
  build_stamp > "$BIN/.stamp"
  sed 's/^/[sigstack]   /' "$TOP/versions.txt" >&2
  log "setup done in $(( $(date +%s) - t0 ))s; binaries in $BIN"
}

# refreg alone, for test suites that need a registry with the referrers API and nothing else.
# refreg imports only go-containerregistry's own packages (pkg/registry, pkg/v1, internal/...),
# while the apt closure of its -dev package is ~520 packages (docker, containerd, ...): so first
# go-containerregistry and the Go toolchain alone; only if that does not build, the apt closure.
# Same unpacked tree, download directory and build function as `setup`.
REFREG_PKG=golang-github-google-go-containerregistry-dev
refreg_stamp() { { echo "$REFREG_PKG"; declare -f go_env write_refreg build_one golang_closure fetch_unpack; } | sha256sum | cut -c1-64; }

golang_closure() { # root packages -> the golang -dev packages and Go toolchain they pull in (unstable)
  sid_apt apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null \
    | grep -v '^ ' | grep -E '^golang-(.*-dev|1\.[0-9]+-(go|src))$' | sort -u
}

fetch_unpack() { # list-file: downloads the listed packages missing from $TOP/debs, unpacks each .deb once into $ROOT
  local missing=() p d n=0
  while read -r p; do ls "$TOP/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done < "$1"
  log "$(wc -l < "$1") Debian packages, ${#missing[@]} to download"
  if [ ${#missing[@]} -gt 0 ]; then
    sid_download "$TOP/debs" "${missing[@]}" || die "download failed, see $TOP/logs/download.log"
  fi
  mkdir -p "$ROOT/.unpacked"
  while read -r p; do
    for d in "$TOP/debs/${p}_"*.deb; do
      [ -e "$ROOT/.unpacked/${d##*/}" ] && continue
      dpkg-deb -x "$d" "$ROOT" && touch "$ROOT/.unpacked/${d##*/}"; n=$((n+1))
    done
  done < "$1"
  log "unpacked $n new debs"
}

setup_refreg() {
  [ $# = 0 ] || die "setup-refreg takes no options"
  check_prereqs refreg
  mkdir -p "$TOP"/{debs,logs,tmp} "$BIN" "$GOCACHE_DIR"
  exec 9> "$TOP/.setup.lock"; flock 9     # one setup at a time per SIGSTACK_DIR
  if [ -x "$BIN/refreg" ] && [ "$(cat "$BIN/.stamp-refreg" 2>/dev/null)" = "$(refreg_stamp)" ]; then
    log "setup-refreg: up to date ($BIN/refreg)"; printf '%s\n' "$BIN/refreg"; return 0
  fi
  local t0 d; t0=$(date +%s)
  make_sid_apt
  if [ ! -s "$TOP/want-refreg.txt" ] || [ "$APT_SID/updated" -nt "$TOP/want-refreg.txt" ]; then
    { echo "$REFREG_PKG"; golang_closure golang-go | grep -E '^golang-1\.[0-9]+-(go|src)$'; } | sort -u > "$TOP/want-refreg.txt.tmp"
    [ "$(wc -l < "$TOP/want-refreg.txt.tmp")" -ge 2 ] || die "could not resolve the Go toolchain in unstable"
    mv "$TOP/want-refreg.txt.tmp" "$TOP/want-refreg.txt"
  fi
  fetch_unpack "$TOP/want-refreg.txt"
  write_refreg
  if ! build_one refreg refreg "" 0 "$OVL/refreg" ""; then
    log "refreg needs more than go-containerregistry itself: fetching the apt closure of $REFREG_PKG"
    golang_closure "$REFREG_PKG" golang-go > "$TOP/want-refreg-closure.txt"
    [ -s "$TOP/want-refreg-closure.txt" ] || die "could not resolve $REFREG_PKG in unstable"
    fetch_unpack "$TOP/want-refreg-closure.txt"
    build_one refreg refreg "" 0 "$OVL/refreg" "" || die "refreg did not build, see $TOP/logs/build-refreg.log"
  fi
  d=$(ls "$TOP/debs/${REFREG_PKG}"_*.deb | head -1); d=${d##*/}
  log "refreg: go-containerregistry $(echo "${d#*_}" | sed 's/_[^_]*\.deb$//'), $(go_env; go version)"
  refreg_stamp > "$BIN/.stamp-refreg"
  log "setup-refreg done in $(( $(date +%s) - t0 ))s"
  printf '%s\n' "$BIN/refreg"
}

prune() { # what only a build needs: unpacked tree, Go cache, downloaded .debs (a rebuild fetches them again)
  rm -rf "$ROOT" "$GOCACHE_DIR" "$TMPD" "$TOP/debs" "$TOP/cosign-deb" "$TOP/registry-deb" "$APT_SID/cache"/*.bin
  log "pruned; $(du -sh "$TOP" 2>/dev/null | cut -f1) left in $TOP (bin, cosign, apt lists, runs)"
}

write_oidc_helper() {
  mkdir -p "$LIB"
  cat > "$LIB/oidc.py" <<'EOF'
#!/usr/bin/env python3
"""Tiny static OIDC issuer for local Fulcio testing (sigstack).
  oidc.py serve --port P --keydir D      serve discovery + JWKS on 127.0.0.1:P
  oidc.py mint  --port P --keydir D [--email E] [--aud sigstore] [--ttl 600]
"""
import argparse, base64, json, os, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding

def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def load_key(keydir):
    p = os.path.join(keydir, "oidc-rsa.pem")
    if not os.path.exists(p):
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(p + ".tmp", "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.replace(p + ".tmp", p)
    with open(p, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)

def jwk(key):
    n = key.public_key().public_numbers()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(hashes.SHA256()); h.update(der)
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": b64u(h.finalize())[:16],
            "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")), "e": b64u(n.e.to_bytes(3, "big"))}

def issuer(port): return "http://127.0.0.1:%d" % port

def serve(a):
    key = load_key(a.keydir); iss = issuer(a.port)
    disc = {"issuer": iss, "jwks_uri": iss + "/jwks.json", "authorization_endpoint": iss + "/auth",
            "token_endpoint": iss + "/token", "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}
    docs = {"/.well-known/openid-configuration": disc, "/jwks.json": {"keys": [jwk(key)]}}
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            d = docs.get(self.path.split("?")[0])
            body = json.dumps(d).encode() if d is not None else b'{"error":"not found"}'
            self.send_response(200 if d is not None else 404)
            self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, fmt, *args): sys.stderr.write("oidc: " + fmt % args + "\n")
    ThreadingHTTPServer(("127.0.0.1", a.port), H).serve_forever()

def mint(a):
    key = load_key(a.keydir); now = int(time.time())
    hdr = {"alg": "RS256", "typ": "JWT", "kid": jwk(key)["kid"]}
    claims = {"iss": issuer(a.port), "aud": a.aud, "sub": a.sub or a.email, "email": a.email,
              "email_verified": True, "iat": now, "nbf": now - 5, "exp": now + a.ttl, "jti": str(uuid.uuid4())}
    si = b64u(json.dumps(hdr, separators=(",", ":")).encode()) + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    print(si + "." + b64u(key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); sp = ap.add_subparsers(dest="cmd", required=True)
    for c in ("serve", "mint"):
        p = sp.add_parser(c); p.add_argument("--port", type=int, required=True); p.add_argument("--keydir", required=True)
        if c == "mint":
            p.add_argument("--email", default="alice@example.com"); p.add_argument("--sub", default="")
            p.add_argument("--aud", default="sigstore"); p.add_argument("--ttl", type=int, default=600)
    a = ap.parse_args(); serve(a) if a.cmd == "serve" else mint(a)
EOF
}


# ---------------------------------------------------------------- start / stop
busy_ports() { # port... -> prints those that cannot be bound on 127.0.0.1 (one python for all: start stays fast)
  python3 - "$@" <<'EOF'
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind(("127.0.0.1", int(p)))
    except OSError: print(p)
    finally: s.close()
EOF
}

# N distinct free loopback ports, drawn at random below the kernel's ephemeral range (so no client
# connection takes them in the meantime); falls back to kernel-assigned ports (bind to port 0).
free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
try:
    eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError):
    eph = 32768
lo, hi = 20000, eph - 1
cands = random.sample(range(lo, hi + 1), min(2000, hi - lo + 1)) if hi - lo >= 2000 else []
socks, ports = [], []
for p in cands + [0] * n * 4:
    if len(ports) == n:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close(); continue
    if s.getsockname()[1] in ports:
        s.close(); continue
    socks.append(s); ports.append(s.getsockname()[1])
if len(ports) < n:
    sys.exit("no free ports")
print(" ".join(map(str, ports)))
EOF
}

wait_http() { # url seconds [pid]
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    curl -sf -m 2 -o /dev/null "$1" && return 0
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

wait_tcp() { # port seconds [pid]: something accepts connections on 127.0.0.1:port (for gRPC-only servers)
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

proc_start() { # pid -> start time in clock ticks since boot (field 22 of /proc/PID/stat)
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }; set -- $s; printf '%s\n' "${20}"
}
proc_live() { # pid starttime: that very process still exists and has not exited (not a zombie)
  local want=$2 s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }; set -- $s
  [ "$1" != Z ] && [ "$1" != X ] && [ "${20}" = "$want" ]
}
is_ours() { # pid starttime needle: same process (PID + start time) and its command line holds needle
  [ "$(proc_start "$1" 2>/dev/null)" = "$2" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$3"
}

launch() { # name logfile needle cmd...  -> records "name pid starttime needle" in $RUN/pids, prints pid
  local name=$1 logf=$2 needle=$3; shift 3
  nohup "$@" > "$logf" 2>&1 < /dev/null &
  local pid=$! st
  st=$(proc_start "$pid") || st=none
  echo "$name $pid $st $needle" >> "$RUN/pids"
  echo "$pid"
}

alive_pids() {
  [ -f "$RUN/pids" ] || return 0
  local name pid st needle
  while read -r name pid st needle; do
    if is_ours "$pid" "$st" "$needle"; then echo "$name $pid"; fi
  done < "$RUN/pids"
}

svc_failed() { # name logfile: a bind clash in free-port mode is retried by start (exit 75)
  if [ "$FREE" = 1 ] && grep -qi "address already in use" "$2" 2>/dev/null; then
    log "$1: port clash"; STARTING=0; stop; exit 75
  fi
  die "$1 failed, see $2"
}

gen_keys() {
  local K=$RUN/keys
  mkdir -p "$K"; chmod 700 "$K"
  [ -f "$K/rekor.key" ] || { openssl genpkey -algorithm ed25519 -out "$K/rekor.key" 2>/dev/null; openssl pkey -in "$K/rekor.key" -pubout -out "$K/rekor.pub"; }
  # Rekor v1: ECDSA P-256 like the public-good instance; kept across starts so older SETs still verify
  [ -f "$K/rekor-v1.key" ] || { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$K/rekor-v1.key"; openssl pkey -in "$K/rekor-v1.key" -pubout -out "$K/rekor-v1.pub"; }
  if [ ! -f "$K/tsa-chain.pem" ]; then
    local n
    for n in root inter leaf; do openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$K/tsa-$n.key"; done
    cat > "$K/tsa.cnf" <<'EOF'
[root]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[inter]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
extendedKeyUsage=timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=critical,timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl req -x509 -new -key "$K/tsa-root.key" -subj "/O=sigstack/CN=sigstack TSA root" -days 3650 -sha256 \
      -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n'; cat "$K/tsa.cnf") -extensions root -out "$K/tsa-root.pem"
    openssl req -new -key "$K/tsa-inter.key" -subj "/O=sigstack/CN=sigstack TSA intermediate" -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n') \
      | openssl x509 -req -CA "$K/tsa-root.pem" -CAkey "$K/tsa-root.key" -CAcreateserial -days 3650 -sha256 -extfile "$K/tsa.cnf" -extensions inter -out "$K/tsa-inter.pem" 2>/dev/null
    openssl req -new -key "$K/tsa-leaf.key" -subj "/O=sigstack/CN=sigstack TSA leaf" -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n') \
      | openssl x509 -req -CA "$K/tsa-inter.pem" -CAkey "$K/tsa-inter.key" -CAcreateserial -days 3650 -sha256 -extfile "$K/tsa.cnf" -extensions leaf -out "$K/tsa-leaf.pem" 2>/dev/null
    cat "$K/tsa-leaf.pem" "$K/tsa-inter.pem" "$K/tsa-root.pem" > "$K/tsa-chain.pem"
  fi
  [ -f "$RUN/ct/seed.bin" ] || { mkdir -p "$RUN/ct"; head -c 32 /dev/urandom > "$RUN/ct/seed.bin"; chmod 600 "$RUN/ct/seed.bin"; }
}

num() { case $2 in ''|*[!0-9]*) die "$1 needs a port number";; esac; printf '%s\n' "$2"; }
duration() { [[ $2 =~ ^[0-9]+(ms|s)$ ]] || die "$1 needs a duration such as 100ms or 2s"; printf '%s\n' "$2"; }

start() {
  local ct=1 oidc=3930 rekor=3900 tsa=3910 fulcio=3920 ctp=3940 rekor1=3950 try rc ports
  FREE=0; REKOR_CHECKPOINT_INTERVAL=2s; REKOR_BATCH_MAX_AGE=250ms; REKOR_AWAIT_POLL=1s; CT_PERIOD=1000
  while [ $# -gt 0 ]; do
    case $1 in
      --free-ports) FREE=1; shift;;
      --oidc-port) oidc=$(num "$1" "${2:-}"); shift 2;;
      --rekor-port) rekor=$(num "$1" "${2:-}"); shift 2;;
      --tsa-port) tsa=$(num "$1" "${2:-}"); shift 2;;
      --fulcio-port) fulcio=$(num "$1" "${2:-}"); shift 2;;
      --ct-port) ctp=$(num "$1" "${2:-}"); shift 2;;
      --rekor-v1-port) rekor1=$(num "$1" "${2:-}"); shift 2;;
      --rekor-checkpoint-interval) REKOR_CHECKPOINT_INTERVAL=$(duration "$1" "${2:-}"); shift 2;;
      --rekor-batch-max-age) REKOR_BATCH_MAX_AGE=$(duration "$1" "${2:-}"); shift 2;;
      --rekor-await-poll) REKOR_AWAIT_POLL=$(duration "$1" "${2:-}"); shift 2;;
      --ct-period) CT_PERIOD=$(num "$1" "${2:-}"); shift 2;;
      --no-ct) ct=0; shift;;
      *) die "unknown start option $1 (see '$0 help')";;
    esac
  done
  check_prereqs run
  local b; for b in $BINS; do [ -x "$BIN/$b" ] || die "$BIN/$b missing: run '$0 setup'"; done
  [ -x "$COSIGN" ] || fetch_cosign
  [ -x "$COSIGN" ] || die "cosign not found at $COSIGN"
  [ -f "$LIB/oidc.py" ] || write_oidc_helper
  if [ -n "$(alive_pids)" ]; then die "already running in $RUN (see '$0 status'); stop it first, or set SIGSTACK_RUN for a second stack"; fi
  for try in 1 2 3; do
    if [ $FREE = 1 ]; then ports=$(free_ports 14) || die "could not find free loopback ports"
    else ports="$oidc $rekor $((rekor+1)) $((rekor+2)) $tsa $((tsa+1)) $fulcio $((fulcio+1)) $((fulcio+2)) $ctp $((ctp+1)) $rekor1 $((rekor1+1)) $((rekor1+2))"; fi
    set +e; ( set -e; start_once "$ct" $ports ); rc=$?; set -e
    [ $rc = 75 ] && [ $FREE = 1 ] && { log "retrying with other ports"; continue; }
    break
  done
  [ $rc = 0 ] || exit "$rc"
  log "started: $(alive_pids | tr '\n' ' ')"
  print_env
}

start_once() { # ct oidc rekor rekor-grpc rekor-metrics tsa tsa-metrics fulcio fulcio-grpc fulcio-metrics ct ct-monitor
               # rekor-v1 rekor-v1-metrics trillian-grpc
  local CT=$1 OIDC_PORT=$2 REKOR_PORT=$3 REKOR_GRPC=$4 REKOR_METRICS=$5 TSA_PORT=$6 TSA_METRICS=$7 \
        FULCIO_PORT=$8 FULCIO_GRPC=$9 FULCIO_METRICS=${10} CT_PORT=${11} CT_MON=${12} \
        REKOR_V1_PORT=${13} REKOR_V1_METRICS=${14} TRILLIAN_PORT=${15}
  local p ports="$OIDC_PORT $REKOR_PORT $REKOR_GRPC $REKOR_METRICS $TSA_PORT $TSA_METRICS $FULCIO_PORT $FULCIO_GRPC $FULCIO_METRICS $REKOR_V1_PORT $REKOR_V1_METRICS $TRILLIAN_PORT"
  [ "$CT" = 1 ] && ports="$ports $CT_PORT $CT_MON"
  p=$(busy_ports $ports | tr '\n' ' ')
  if [ -n "$p" ]; then
    [ "$FREE" = 1 ] && { log "ports in use on 127.0.0.1: $p"; exit 75; }
    die "ports in use on 127.0.0.1: $p(or use --free-ports)"
  fi
  mkdir -p "$RUN"/{logs,rekor-storage,ct}
  rm -f "$RUN/pids" "$RUN/env"
  STARTING=1
  gen_keys
  local K=$RUN/keys L=$RUN/logs pid
  local ISS=http://127.0.0.1:$OIDC_PORT REKOR=http://127.0.0.1:$REKOR_PORT REKOR_V1=http://127.0.0.1:$REKOR_V1_PORT TSA=http://127.0.0.1:$TSA_PORT/api/v1/timestamp FULCIO=http://127.0.0.1:$FULCIO_PORT

  pid=$(launch oidc "$L/oidc.log" "$LIB/oidc.py" python3 "$LIB/oidc.py" serve --port "$OIDC_PORT" --keydir "$K")
  wait_http "$ISS/.well-known/openid-configuration" 15 "$pid" || svc_failed "OIDC issuer" "$L/oidc.log"

  # Rekor v2: --hostname is the checkpoint origin and MUST equal the host of the trusted-root baseUrl
  # (sigstore-go verifies the checkpoint with note name = url.Hostname(baseUrl)).
  pid=$(SIGSTACK_REKOR_AWAIT_POLL=$REKOR_AWAIT_POLL launch rekor "$L/rekor.log" "$BIN/rekor-server-posix" "$BIN/rekor-server-posix" serve --hostname 127.0.0.1 \
    --http-address 127.0.0.1 --http-port "$REKOR_PORT" --grpc-address 127.0.0.1 --grpc-port "$REKOR_GRPC" --http-metrics-port "$REKOR_METRICS" \
    --storage-dir "$RUN/rekor-storage" --signer-filepath "$K/rekor.key" --checkpoint-interval "$REKOR_CHECKPOINT_INTERVAL" --batch-max-age "$REKOR_BATCH_MAX_AGE")
  wait_http "$REKOR/healthz" 30 "$pid" || svc_failed rekor "$L/rekor.log"

  # Rekor v1 on Trillian (trillian-mem: log server + sequencer in one process, in-memory storage, so
  # each start begins an empty log). Rekor creates the tree itself (no --trillian_log_server.tlog_id);
  # --rekor_server.hostname is the checkpoint origin ("127.0.0.1 - <tree id>"). Search index (redis)
  # and attestation storage stay off: enabled_api_endpoints leaves out searchIndex.
  pid=$(launch trillian "$L/trillian.log" "$BIN/trillian-mem" "$BIN/trillian-mem" --rpc_endpoint "127.0.0.1:$TRILLIAN_PORT")
  wait_tcp "$TRILLIAN_PORT" 15 "$pid" || svc_failed trillian "$L/trillian.log"
  pid=$(SIGSTACK_REKOR_V1_METRICS_ADDR=127.0.0.1:$REKOR_V1_METRICS launch rekor-v1 "$L/rekor-v1.log" "$BIN/rekor-server" "$BIN/rekor-server" serve \
    --rekor_server.address 127.0.0.1 --port "$REKOR_V1_PORT" --rekor_server.hostname 127.0.0.1 \
    --trillian_log_server.address 127.0.0.1 --trillian_log_server.port "$TRILLIAN_PORT" \
    --rekor_server.signer "$K/rekor-v1.key" --enable_retrieve_api=false \
    --enabled_api_endpoints getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID,searchLogQuery)
  wait_http "$REKOR_V1/api/v1/log" 30 "$pid" || svc_failed "Rekor v1" "$L/rekor-v1.log"
  # the key the trusted root names is the one Rekor v1 serves (and signs with)
  curl -sf -m 10 "$REKOR_V1/api/v1/log/publicKey" > "$K/rekor-v1-served.pub" || die "Rekor v1 serves no public key, see $L/rekor-v1.log"
  [ "$(openssl pkey -pubin -in "$K/rekor-v1-served.pub" -outform DER 2>/dev/null | sha256sum)" = "$(openssl pkey -pubin -in "$K/rekor-v1.pub" -outform DER | sha256sum)" ] \
    || die "Rekor v1 at $REKOR_V1 serves another public key than $K/rekor-v1.pub"

  pid=$(SIGSTACK_TSA_METRICS_ADDR=127.0.0.1:$TSA_METRICS launch tsa "$L/tsa.log" "$BIN/timestamp-server" "$BIN/timestamp-server" serve \
    --host 127.0.0.1 --port "$TSA_PORT" --timestamp-signer file --file-signer-key-path "$K/tsa-leaf.key" \
    --certificate-chain-path "$K/tsa-chain.pem" --disable-ntp-monitoring)
  wait_http "$TSA/certchain" 30 "$pid" || svc_failed TSA "$L/tsa.log"

  printf '{"OIDCIssuers": {"%s": {"IssuerURL": "%s", "ClientID": "sigstore", "Type": "email"}}}\n' "$ISS" "$ISS" > "$RUN/fulcio-config.json"
  local ctargs=(--ct-log-url "")
  [ "$CT" = 1 ] && ctargs=(--ct-log-url "http://127.0.0.1:$CT_PORT/sigstack")
  pid=$(launch fulcio "$L/fulcio.log" "$BIN/fulcio" "$BIN/fulcio" serve --ca ephemeralca --config-path "$RUN/fulcio-config.json" \
    --host 127.0.0.1 --port "$FULCIO_PORT" --grpc-host 127.0.0.1 --grpc-port "$FULCIO_GRPC" --metrics-port "$FULCIO_METRICS" \
    --legacy-unix-domain-socket "@sigstack-fulcio-legacy-$FULCIO_PORT" "${ctargs[@]}")
  wait_http "$FULCIO/api/v2/trustBundle" 30 "$pid" || svc_failed fulcio "$L/fulcio.log"
  curl -sf -m 10 "$FULCIO/api/v2/trustBundle" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("".join(c if c.endswith("\n") else c+"\n" for c in d["chains"][0]["certificates"]), end="")' > "$RUN/fulcio-chain.pem"

  local ST; ST=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
  # ephemeralca = new CA on every start. Keep every CA seen so far in the trusted root, so keyless
  # bundles signed before a restart still verify (like a CA rotation in the public-good root).
  mkdir -p "$RUN/fulcio-cas"
  local fp; fp=$(openssl x509 -in "$RUN/fulcio-chain.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d ':' | cut -c1-16)
  ls "$RUN"/fulcio-cas/*-"$fp".pem >/dev/null 2>&1 || cp "$RUN/fulcio-chain.pem" "$RUN/fulcio-cas/$(date -u +%Y%m%dT%H%M%SZ)-$fp.pem"
  local fulcios=() ca
  for ca in "$RUN"/fulcio-cas/*.pem; do fulcios+=(--fulcio="url=$FULCIO,certificate-chain=$ca,start-time=$ST"); done
  local ctfe=() C=$RUN/ct
  if [ "$CT" = 1 ]; then
    cp "$RUN/fulcio-chain.pem" "$C/roots.pem"     # sunlight accepts chains to the (new, ephemeral) Fulcio root
    [ -f "$C/checkpoints.db" ] || python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE checkpoints (logID BLOB PRIMARY KEY, body BLOB NOT NULL) STRICT'); c.commit()" "$C/checkpoints.db"
    # sunlight only creates a log on its inception day (and refuses to start if it is missing later)
    [ -f "$C/inception" ] && [ -f "$C/data/checkpoint" ] || date +%Y-%m-%d > "$C/inception"
    cat > "$C/sunlight.yaml" <<EOF
listen:
  - "127.0.0.1:$CT_PORT"
checkpoints: $C/checkpoints.db
logs:
  - shortname: sigstack
    inception: $(cat "$C/inception")
    # must be https and port-less (host-routed mux); sunlight serves plain HTTP/h2c when no ACME is configured
    submissionprefix: https://127.0.0.1/sigstack
    monitoringprefix: http://127.0.0.1:$CT_MON
    roots: $C/roots.pem
    secret: $C/seed.bin
    cache: $C/cache.db
    poolsize: 1000
    period: $CT_PERIOD
    localdirectory: $C/data
    notafterstart: 2000-01-01T00:00:00Z
    notafterlimit: 2100-01-01T00:00:00Z
EOF
    # static-ct monitoring API (tiles/checkpoint) = the sunlight data dir served read-only; sunlight
    # cross-checks its stored checkpoint against MonitoringPrefix on every restart.
    mkdir -p "$C/data"
    pid=$(launch ct-monitor "$L/ct-monitor.log" "$C/data" python3 -m http.server --bind 127.0.0.1 --directory "$C/data" "$CT_MON")
    wait_http "http://127.0.0.1:$CT_MON/" 15 "$pid" || svc_failed "CT monitoring server" "$L/ct-monitor.log"
    pid=$(launch ct "$L/sunlight.log" "$BIN/sunlight" "$BIN/sunlight" -c "$C/sunlight.yaml")
    wait_http "http://127.0.0.1:$CT_PORT/sigstack/log.v3.json" 30 "$pid" || svc_failed sunlight "$L/sunlight.log"
    curl -sf -m 10 "http://127.0.0.1:$CT_PORT/sigstack/log.v3.json" | python3 -c 'import json,sys,textwrap; k=json.load(sys.stdin)["key"]; print("-----BEGIN PUBLIC KEY-----\n"+"\n".join(textwrap.wrap(k,64))+"\n-----END PUBLIC KEY-----")' > "$C/ct.pub"
    ctfe=(--ctfe="url=http://127.0.0.1:$CT_PORT/sigstack,public-key=$C/ct.pub,start-time=$ST")
  fi

  "$COSIGN" trusted-root create "${fulcios[@]}" \
    --rekor="url=$REKOR,public-key=$K/rekor.pub,start-time=$ST,origin=127.0.0.1" \
    --rekor="url=$REKOR_V1,public-key=$K/rekor-v1.pub,start-time=$ST" \
    --tsa="url=$TSA,certificate-chain=$K/tsa-chain.pem,start-time=$ST" "${ctfe[@]}" --out "$RUN/trusted_root.json" >&2
  "$COSIGN" signing-config create \
    --fulcio="url=$FULCIO,api-version=1,start-time=$ST,operator=sigstack.local" \
    --rekor="url=$REKOR,api-version=2,start-time=$ST,operator=sigstack.local" --rekor-config=ANY \
    --tsa="url=$TSA,api-version=1,start-time=$ST,operator=sigstack.local" --tsa-config=ANY \
    --oidc-provider="url=$ISS,api-version=1,start-time=$ST,operator=sigstack.local" --out "$RUN/signing_config.json" >&2
  "$COSIGN" signing-config create \
    --fulcio="url=$FULCIO,api-version=1,start-time=$ST,operator=sigstack.local" \
    --rekor="url=$REKOR_V1,api-version=1,start-time=$ST,operator=sigstack.local" --rekor-config=ANY \
    --tsa="url=$TSA,api-version=1,start-time=$ST,operator=sigstack.local" --tsa-config=ANY \
    --oidc-provider="url=$ISS,api-version=1,start-time=$ST,operator=sigstack.local" --out "$RUN/signing_config_v1.json" >&2

  cat > "$RUN/mint-token.sh" <<EOF
#!/bin/sh
# usage: mint-token.sh [email] [ttl-seconds]  -> prints an RS256 ID token from the local issuer $ISS (aud=sigstore)
exec python3 "$LIB/oidc.py" mint --port $OIDC_PORT --keydir "$K" --email "\${1:-alice@example.com}" --ttl "\${2:-600}"
EOF
  chmod +x "$RUN/mint-token.sh"
  local ctu="" ctk=""; [ "$CT" = 1 ] && { ctu=http://127.0.0.1:$CT_PORT/sigstack; ctk=$C/ct.pub; }
  [ "$CT" = 1 ] || CT_PORT= CT_MON=
  cat > "$RUN/env.tmp" <<EOF
SIGSTACK_DIR=$TOP
SIGSTACK_RUN=$RUN
SIGSTACK_TRUSTED_ROOT=$RUN/trusted_root.json
SIGSTACK_SIGNING_CONFIG=$RUN/signing_config.json
SIGSTACK_OIDC_ISSUER=$ISS
SIGSTACK_TOKEN_CMD=$RUN/mint-token.sh
SIGSTACK_MINT_TOKEN=$RUN/mint-token.sh
SIGSTACK_REKOR_URL=$REKOR
SIGSTACK_TSA_URL=$TSA
SIGSTACK_FULCIO_URL=$FULCIO
SIGSTACK_CT_URL=$ctu
SIGSTACK_REKOR_PUBLIC_KEY=$K/rekor.pub
SIGSTACK_TSA_CHAIN=$K/tsa-chain.pem
SIGSTACK_FULCIO_CHAIN=$RUN/fulcio-chain.pem
SIGSTACK_CT_PUBLIC_KEY=$ctk
SIGSTACK_COSIGN=$COSIGN
SIGSTACK_REFREG=$BIN/refreg
SIGSTACK_OIDC_PORT=$OIDC_PORT
SIGSTACK_REKOR_PORT=$REKOR_PORT
SIGSTACK_REKOR_GRPC_PORT=$REKOR_GRPC
SIGSTACK_REKOR_METRICS_PORT=$REKOR_METRICS
SIGSTACK_TSA_PORT=$TSA_PORT
SIGSTACK_TSA_METRICS_PORT=$TSA_METRICS
SIGSTACK_FULCIO_PORT=$FULCIO_PORT
SIGSTACK_FULCIO_GRPC_PORT=$FULCIO_GRPC
SIGSTACK_FULCIO_METRICS_PORT=$FULCIO_METRICS
SIGSTACK_CT_PORT=$CT_PORT
SIGSTACK_CT_MONITOR_PORT=$CT_MON
SIGSTACK_SIGNING_CONFIG_V1=$RUN/signing_config_v1.json
SIGSTACK_REKOR_V1_URL=$REKOR_V1
SIGSTACK_REKOR_V1_PUBLIC_KEY=$K/rekor-v1.pub
SIGSTACK_REKOR_V1_PORT=$REKOR_V1_PORT
SIGSTACK_REKOR_V1_METRICS_PORT=$REKOR_V1_METRICS
SIGSTACK_TRILLIAN_PORT=$TRILLIAN_PORT
EOF
  mv "$RUN/env.tmp" "$RUN/env"
  STARTING=0
}

print_env() { # $RUN/env (KEY=VALUE lines) as single-quoted shell exports
  local k v q="'"
  while IFS='=' read -r k v; do
    [ -n "$k" ] && printf "export %s='%s'\n" "$k" "${v//$q/$q\\$q$q}"
  done < "$RUN/env"
}

env_cmd() {
  [ -f "$RUN/env" ] || die "no stack started in $RUN: run '$0 start' (same SIGSTACK_DIR/SIGSTACK_RUN)"
  local n; n=$(alive_pids | wc -l)
  [ "$n" -gt 0 ] || die "the stack in $RUN is not running: run '$0 start'"
  [ "$n" -eq "$(wc -l < "$RUN/pids")" ] || log "WARNING: some services are not running (see '$0 status')"
  print_env
}

stop() {
  [ -f "$RUN/pids" ] || { log "nothing recorded in $RUN/pids"; return 0; }
  local name pid st needle i sent=() left
  while read -r name pid st needle; do   # signal only what is provably ours (PID + start time + command line)
    if is_ours "$pid" "$st" "$needle"; then kill -TERM "$pid" && log "sent TERM to $name ($pid)" && sent+=("$name $pid $st"); fi
  done < "$RUN/pids"
  still() { local e; for e in ${sent[@]+"${sent[@]}"}; do set -- $e; proc_live "$2" "$3" && echo "$e"; done; return 0; }
  for ((i = 0; i < 75; i++)); do [ -z "$(still)" ] && break; sleep 0.2; done   # until exited and sockets closed
  left=$(still)
  if [ -n "$left" ]; then
    while read -r name pid st; do kill -KILL "$pid" 2>/dev/null && log "sent KILL to $name ($pid)"; done <<< "$left"
    for ((i = 0; i < 25; i++)); do [ -z "$(still)" ] && break; sleep 0.2; done
  fi
  rm -f "$RUN/pids"; log "stopped"
}

# Sunlight sets the Linux immutable flag on its tiles (where it may); clear it so they can be deleted.
clear_immutable() {
  python3 - "$1" <<'EOF'
import fcntl, os, struct, sys
GETFLAGS, SETFLAGS, IMMUTABLE = 0x80086601, 0x40086602, 0x10
for d, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files:
        p = os.path.join(d, n)
        if os.path.islink(p):
            continue
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fl = struct.unpack("i", fcntl.ioctl(fd, GETFLAGS, bytes(8))[:4])[0]
            if fl & IMMUTABLE:
                fcntl.ioctl(fd, SETFLAGS, struct.pack("i", fl & ~IMMUTABLE) + bytes(4))
        except OSError:
            pass
        finally:
            os.close(fd)
EOF
}

clean() { # all runtime state of $RUN: keys, logs, Rekor tiles, CT log
  [ -z "$(alive_pids)" ] || die "still running; run '$0 stop' first"
  [ -d "$RUN" ] || return 0
  [ -d "$RUN/ct/data" ] && clear_immutable "$RUN/ct/data"
  rm -rf "$RUN"; log "removed $RUN"
}

status() {
  [ -f "$RUN/pids" ] || { echo "not running"; return 0; }
  local name pid st needle
  while read -r name pid st needle; do
    if is_ours "$pid" "$st" "$needle"; then echo "$name $pid alive"; else echo "$name $pid dead"; fi
  done < "$RUN/pids"
}

# ---------------------------------------------------------------- e2e
envval() { sed -n "s/^$1=//p" "$RUN/env"; }

# Save the sigstore bundles attached to IMG (OCI referrers API, or the sha256-<hex> fallback tag) into DIR.
save_image_bundles() { # image-ref dir
  python3 - "$1" "$2" <<'EOF'
import json, os, sys, urllib.request
ref, out = sys.argv[1], sys.argv[2]
reg, rest = ref.split("/", 1); repo, dig = rest.split("@", 1)
base = f"http://{reg}/v2/{repo}"
def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as r: return r.read()
IDX = "application/vnd.oci.image.index.v1+json"
try: idx = json.loads(get(f"{base}/referrers/{dig}", IDX))
except Exception: idx = json.loads(get(f"{base}/manifests/{dig.replace(':', '-')}", IDX))
for m in idx.get("manifests", []):
    man = json.loads(get(f"{base}/manifests/{m['digest']}", m.get("mediaType", "application/vnd.oci.image.manifest.v1+json")))
    if man.get("artifactType", "").startswith("application/vnd.dev.sigstore.bundle"):
        created = man.get("annotations", {}).get("org.opencontainers.image.created", "").replace(":", "")
        fn = os.path.join(out, f"img-{created}-{m['digest'][7:19]}.bundle.json")
        if not os.path.exists(fn):
            open(fn, "wb").write(get(f"{base}/blobs/{man['layers'][0]['digest']}")); print("saved", fn, file=sys.stderr)
EOF
}

# Push a one-layer OCI image to a plain-HTTP registry with python's urllib; prints REG/REPO@sha256:...
push_test_image() { # registry repo
  python3 - "$1" "$2" <<'EOF'
import gzip, hashlib, io, json, sys, tarfile, time, urllib.parse, urllib.request
reg, repo = sys.argv[1], sys.argv[2]
base = f"http://{reg}/v2/{repo}"
def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def req(method, url, data=None, ctype=None):
    r = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype} if ctype else {})
    with urllib.request.urlopen(r, timeout=30) as resp: return resp
def put_blob(b):
    loc = req("POST", f"{base}/blobs/uploads/").headers["Location"]
    url = urllib.parse.urljoin(base + "/", loc)
    url += ("&" if "?" in url else "?") + "digest=" + urllib.parse.quote(sha(b))
    req("PUT", url, b, "application/octet-stream")
data = f"sigstack e2e {time.time_ns()}\n".encode()
tbuf = io.BytesIO()
with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    ti = tarfile.TarInfo("hello.txt"); ti.size = len(data); ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))
tar = tbuf.getvalue(); layer = gzip.compress(tar, mtime=0)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [sha(tar)]}}).encode()
put_blob(layer); put_blob(config)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}]}).encode()
got = req("PUT", f"{base}/manifests/v1", man, "application/vnd.oci.image.manifest.v1+json").headers.get("Docker-Content-Digest")
if got and got != sha(man): sys.exit(f"registry digest {got} != {sha(man)}")
print(f"{reg}/{repo}@{sha(man)}")
EOF
}

e2e_cleanup() {
  if [ -n "${REG_PID:-}" ] && is_ours "$REG_PID" "$REG_ST" "$E2E_TMP/registry.yml"; then
    kill -TERM "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; log "stopped docker-registry ($REG_PID)"
  fi
  [ -n "${E2E_TMP:-}" ] && rm -rf "$E2E_TMP"
}

E2E_OK=0 E2E_BAD=0
expect() { # ok|fail description cmd...   (each cosign call under a timeout; output appended to e2e.log)
  local want=$1 what=$2 rc; shift 2
  printf '\n$ %s\n' "$*" >> "$E2E_DIR/e2e.log"
  timeout 120 "$@" >> "$E2E_DIR/e2e.log" 2>&1 && rc=0 || rc=$?
  if { [ "$want" = ok ] && [ $rc = 0 ]; } || { [ "$want" = fail ] && [ $rc != 0 ] && [ $rc != 124 ]; }; then
    log "ok   $what"; E2E_OK=$((E2E_OK+1))
  else
    log "FAIL $what (rc=$rc; see $E2E_DIR/e2e.log)"; E2E_BAD=$((E2E_BAD+1))
  fi
}

e2e() { # [image@digest on a plain-HTTP registry]; default: a throwaway docker-registry + tiny image
  [ -f "$RUN/env" ] && [ -n "$(alive_pids)" ] || die "no running stack in $RUN: run '$0 start' first"
  [ "$COSIGN" = "$TOP/cosign/usr/bin/cosign" ] && fetch_cosign
  local TR SC SC1 ISS FULCIO REKOR_V1 tok email=alice@example.com
  TR=$(envval SIGSTACK_TRUSTED_ROOT) SC=$(envval SIGSTACK_SIGNING_CONFIG) ISS=$(envval SIGSTACK_OIDC_ISSUER)
  SC1=$(envval SIGSTACK_SIGNING_CONFIG_V1) FULCIO=$(envval SIGSTACK_FULCIO_URL) REKOR_V1=$(envval SIGSTACK_REKOR_V1_URL)
  local sct=(); [ -n "$(envval SIGSTACK_CT_URL)" ] || sct=(--insecure-ignore-sct)
  mkdir -p "$TMPD" "$OUT"
  E2E_TMP=$(mktemp -d "$TMPD/e2e.XXXXXX"); E2E_DIR=$OUT/e2e-$(date +%Y%m%dT%H%M%S)-$$
  mkdir -p "$E2E_DIR"; : > "$E2E_DIR/e2e.log"
  trap e2e_cleanup EXIT
  local IMG=${1:-} IMG1=${1:-}
  if [ -z "$IMG" ]; then
    local reg port; reg=$(fetch_registry); port=$(free_ports 1)
    printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
      "$E2E_TMP/registry" "$port" > "$E2E_TMP/registry.yml"
    "$reg" serve "$E2E_TMP/registry.yml" > "$E2E_DIR/registry.log" 2>&1 < /dev/null &
    REG_PID=$!; REG_ST=$(proc_start "$REG_PID" || echo none)
    wait_http "http://127.0.0.1:$port/v2/" 20 "$REG_PID" || die "docker-registry did not start, see $E2E_DIR/registry.log"
    log "docker-registry ($reg) on 127.0.0.1:$port, pid $REG_PID"
    IMG=$(push_test_image "127.0.0.1:$port" sigstack/e2e) || die "could not push the test image"
    log "pushed $IMG"
    # a second image for cosign 2's legacy format only, so its verification cannot lean on the bundles of $IMG
    IMG1=$(push_test_image "127.0.0.1:$port" sigstack/e2e-v1) || die "could not push the second test image"
  fi
  export COSIGN_PASSWORD="e2e-$$-$RANDOM"
  ( cd "$E2E_TMP" && timeout 60 "$COSIGN" generate-key-pair >/dev/null 2>&1 ) || die "cosign generate-key-pair failed"
  local KEY=$E2E_TMP/cosign.key PUB=$E2E_TMP/cosign.pub B=$E2E_DIR
  echo "sigstack e2e $(date)" > "$B/blob.txt"
  expect ok   "image, key: sign (Rekor v2 + TSA)" "$COSIGN" sign --key "$KEY" --signing-config "$SC" --trusted-root "$TR" --allow-http-registry --yes "$IMG"
  expect ok   "image, key: verify" "$COSIGN" verify --key "$PUB" --trusted-root "$TR" --allow-http-registry "$IMG"
  tok=$("$RUN/mint-token.sh" "$email")
  expect ok   "image, keyless: sign (Fulcio$([ ${#sct[@]} = 0 ] && echo ' + SCT'), Rekor v2, TSA)" "$COSIGN" sign --identity-token "$tok" --signing-config "$SC" --trusted-root "$TR" --allow-http-registry --yes "$IMG"
  expect ok   "image, keyless: verify" "$COSIGN" verify "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --allow-http-registry "$IMG"
  expect fail "image, keyless: wrong identity is refused" "$COSIGN" verify "${sct[@]}" --certificate-identity mallory@example.com --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --allow-http-registry "$IMG"
  expect ok   "blob, key: sign-blob" "$COSIGN" sign-blob --key "$KEY" --signing-config "$SC" --trusted-root "$TR" --bundle "$B/blob-key.bundle.json" --yes "$B/blob.txt"
  expect ok   "blob, key: verify-blob" "$COSIGN" verify-blob --key "$PUB" --trusted-root "$TR" --bundle "$B/blob-key.bundle.json" "$B/blob.txt"
  expect ok   "blob, keyless: sign-blob" "$COSIGN" sign-blob --identity-token "$("$RUN/mint-token.sh" "$email")" --signing-config "$SC" --trusted-root "$TR" --bundle "$B/blob-keyless.bundle.json" --yes "$B/blob.txt"
  expect ok   "blob, keyless: verify-blob" "$COSIGN" verify-blob "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --bundle "$B/blob-keyless.bundle.json" "$B/blob.txt"
  echo tampered >> "$E2E_TMP/blob-tampered.txt"; cat "$B/blob.txt" >> "$E2E_TMP/blob-tampered.txt"
  expect fail "blob, keyless: tampered blob is refused" "$COSIGN" verify-blob "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --bundle "$B/blob-keyless.bundle.json" "$E2E_TMP/blob-tampered.txt"
  # Rekor v1: cosign 2's legacy format (.sig tag, SET in the dev.sigstore.cosign/bundle annotation), and a bundle
  local v1=(--new-bundle-format=false --use-signing-config=false --fulcio-url "$FULCIO" --rekor-url "$REKOR_V1")
  expect ok   "image, keyless, legacy format: sign (Fulcio, Rekor v1 SET)" "$COSIGN" sign "${v1[@]}" --identity-token "$("$RUN/mint-token.sh" "$email")" --trusted-root "$TR" --allow-http-registry --yes "$IMG1"
  expect ok   "image, keyless, legacy format: verify" "$COSIGN" verify "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --allow-http-registry "$IMG1"
  expect fail "image, keyless, legacy format: wrong identity is refused" "$COSIGN" verify "${sct[@]}" --certificate-identity mallory@example.com --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --allow-http-registry "$IMG1"
  python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); t["tlogs"] = [l for l in t["tlogs"] if l["baseUrl"] != sys.argv[2]]; json.dump(t, open(sys.argv[3], "w"))' \
    "$TR" "$REKOR_V1" "$E2E_TMP/trusted_root_no_v1.json"
  expect fail "image, keyless, legacy format: refused without Rekor v1 in the trusted root" "$COSIGN" verify "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$E2E_TMP/trusted_root_no_v1.json" --allow-http-registry "$IMG1"
  expect ok   "blob, keyless: sign-blob (Rekor v1 + TSA)" "$COSIGN" sign-blob --identity-token "$("$RUN/mint-token.sh" "$email")" --signing-config "$SC1" --trusted-root "$TR" --bundle "$B/blob-keyless-v1.bundle.json" --yes "$B/blob.txt"
  expect ok   "blob, keyless: verify-blob (Rekor v1)" "$COSIGN" verify-blob "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --bundle "$B/blob-keyless-v1.bundle.json" "$B/blob.txt"
  expect fail "blob, keyless: tampered blob is refused (Rekor v1)" "$COSIGN" verify-blob "${sct[@]}" --certificate-identity "$email" --certificate-oidc-issuer "$ISS" --trusted-root "$TR" --bundle "$B/blob-keyless-v1.bundle.json" "$E2E_TMP/blob-tampered.txt"
  save_image_bundles "$IMG" "$B" || log "could not save the image bundles"
  cp "$PUB" "$B/cosign.pub"
  log "e2e: $E2E_OK passed, $E2E_BAD failed; bundles and log in $B"
  [ "$E2E_BAD" = 0 ]
}

# ---------------------------------------------------------------- main
usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$SELF"; }
FREE=0
case ${1:-} in
  setup) shift; setup "$@";;
  setup-refreg) shift; setup_refreg "$@";;
  start) shift; start "$@";;
  env) env_cmd;;
  token) [ -x "$RUN/mint-token.sh" ] || die "not started"; "$RUN/mint-token.sh" "${2:-alice@example.com}" "${3:-600}";;
  status) status;;
  stop) stop;;
  e2e) shift; e2e "$@";;
  clean) clean;;
  prune) prune;;
  prereqs) shift; prereqs "$@";;
  help|-h|--help) usage;;
  *) usage >&2; exit 2;;
esac
