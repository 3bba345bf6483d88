# Shell helpers shared by demo.sh and bench-registry.sh: make a tiny OCI image with coreutils,
# push it to a registry with curl, run a throwaway docker-registry. Source this file.

# make_image DIR SEED: a one-layer image in an OCI layout at DIR, tagged v1; prints the manifest hex.
make_image() {
  local dir=$1 seed=$2 layer config mjson manifest
  mkdir -p "$dir/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  layer=$(_put_blob "$dir" "layer of $seed")
  config=$(_put_blob "$dir" "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer\"]},\"config\":{}}")
  mjson="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":$(wc -c < "$dir/blobs/sha256/$config"),\"digest\":\"sha256:$config\"},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":$(wc -c < "$dir/blobs/sha256/$layer"),\"digest\":\"sha256:$layer\"}]}"
  manifest=$(_put_blob "$dir" "$mjson")
  echo "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":${#mjson},\"digest\":\"sha256:$manifest\",\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" > "$dir/index.json"
  echo "$manifest"
}

_put_blob() {
  local d
  d=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)
  printf '%s' "$2" > "$1/blobs/sha256/$d"
  echo "$d"
}

# push_image DIR HOST:PORT REPO TAG: pushes the image made by make_image (plain HTTP).
push_image() {
  local dir=$1 host=$2 repo=$3 tag=$4 base b loc sep m
  base="http://$host/v2/$repo"
  m=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$dir/index.json")
  for b in $(ls "$dir/blobs/sha256"); do
    [ "$b" = "$m" ] && continue
    # Distribution's two-step upload: POST opens a session, PUT ?digest= completes it.
    loc=$(curl -fsS -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    case "$loc" in http*) ;; *) loc="http://$host$loc" ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -fsS -X PUT --data-binary "@$dir/blobs/sha256/$b" -H 'Content-Type: application/octet-stream' "$loc${sep}digest=sha256:$b" >/dev/null
  done
  curl -fsS -X PUT --data-binary "@$dir/blobs/sha256/$m" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' "$base/manifests/$tag" >/dev/null
}

# start_registry DIR: starts docker-registry on a free loopback port with storage and access log
# under DIR; sets REGISTRY_PID and REGISTRY_HOST. The caller stops it (stop_registry).
start_registry() {
  local dir=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir/data" "$port" > "$dir/config.yml"
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/access.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY_HOST="127.0.0.1:$port"
  for _ in $(seq 200); do curl -fs "http://$REGISTRY_HOST/v2/" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "docker-registry did not start" >&2; return 1
}

stop_registry() { kill "$REGISTRY_PID" 2>/dev/null; wait "$REGISTRY_PID" 2>/dev/null || true; }
