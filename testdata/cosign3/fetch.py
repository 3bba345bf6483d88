"""Saves what a registry holds for one image, byte for byte as served: the image manifest, the
referrers (API and tag schema), each referrer's manifest, config and layers, the tag list; plus
each bundle's DSSE statement decoded (files named *.statement.json are derived, not served).
Usage: fetch.py BASE-URL REPO DIGEST DEST   (record.sh calls it)."""
import base64, json, os, sys, urllib.error, urllib.request

base, repo, digest, dest = sys.argv[1:5]
v2 = f"{base}/v2/{repo}"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIGN = "https://sigstore.dev/cosign/sign/v1"


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read(1 << 22)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read(1 << 16)


def save(name, data):
    with open(os.path.join(dest, name), "wb") as f:
        f.write(data)


def status_note(name, url, status, ctype, body):
    save(name, f"GET {url.replace(base, '')}\n{status} {ctype}\n{body.decode('utf-8', 'replace')}".encode())


status, ctype, body = get(f"{v2}/manifests/{digest}", MANIFEST)
assert status == 200, (status, body)
save("image.manifest.json", body)

indexes = {}
url = f"{v2}/referrers/{digest}"
status, ctype, body = get(url, INDEX)
status_note("referrers-api.response.txt", url, status, ctype, body if status != 200 else b"(body in referrers-api.index.json)\n")
if status == 200:
    save("referrers-api.index.json", body)
    indexes["api"] = json.loads(body)
url = f"{v2}/manifests/{digest.replace(':', '-')}"
status, ctype, body = get(url, INDEX)
status_note("tag-schema.response.txt", url, status, ctype, body if status != 200 else b"(body in tag-schema.index.json)\n")
if status == 200:
    save("tag-schema.index.json", body)
    indexes["tag"] = json.loads(body)

status, _, body = get(f"{v2}/tags/list")
save("tags.json", body)

seen = {}
for idx in indexes.values():
    for desc in idx.get("manifests", []):
        if desc["digest"] in seen:
            continue
        status, _, man = get(f"{v2}/manifests/{desc['digest']}", desc.get("mediaType", MANIFEST))
        assert status == 200, (desc, status)
        m = json.loads(man)
        ptype = m.get("annotations", {}).get("dev.sigstore.bundle.predicateType", "")
        name = "signature" if ptype == SIGN else "attestation-" + ptype.rstrip("/").split("/")[-2] + "-" + ptype.rstrip("/").split("/")[-1]
        seen[desc["digest"]] = name
        save(f"{name}.manifest.json", man)
        _, _, cfg = get(f"{v2}/blobs/{m['config']['digest']}")
        save(f"{name}.config.blob", cfg)
        for i, layer in enumerate(m.get("layers", [])):
            _, _, blob = get(f"{v2}/blobs/{layer['digest']}")
            save(f"{name}.layer{i}.bundle.json", blob)
            env = json.loads(blob).get("dsseEnvelope")
            if env:
                stmt = json.loads(base64.b64decode(env["payload"]))
                save(f"{name}.layer{i}.statement.json", (json.dumps(stmt, indent=2) + "\n").encode())
save("referrer-names.json", (json.dumps(seen, indent=2) + "\n").encode())
