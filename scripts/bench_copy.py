"""sigil copy vs cosign copy between two local docker-registry instances; see bench-copy.sh."""
import os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import RequestLog, median, run as run_env  # noqa: E402

sigil, cosign, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="sigil-bench-copy-")
key = f"{root}/keys-example/example.key"
password = open(f"{root}/keys-example/PASSWORD").read()
env = dict(os.environ, SIGIL_PASSWORD=password, COSIGN_PASSWORD=password,
           TUF_ROOT=f"{work}/tuf", HOME=work, DOCKER_CONFIG=f"{work}/docker")
HTTP = "--allow-http-registry"


def sh(script):
    return subprocess.run(["bash", "-c", f". {root}/scripts/lib.sh; {script}"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


def start(name):
    out = sh(f"start_registry {work}/{name} >/dev/null; echo $REGISTRY_HOST; echo $REGISTRY_PID")
    host, pid = out.splitlines()
    return host, int(pid)


(a, a_pid), (b, b_pid) = start("a"), start("b")
log_b = RequestLog(f"{work}/b/access.log")
try:
    import hashlib, json
    slsa, sbom = f"{work}/slsa.json", f"{work}/sbom.spdx.json"
    open(slsa, "w").write('{"buildDefinition":{"buildType":"https://example.com/t","externalParameters":{}},'
                          '"runDetails":{"builder":{"id":"https://example.com/builder"}}}')
    open(sbom, "w").write('{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","packages":[]}')

    def image(name, extra_layer_bytes):
        """An image in registry A (made as a layout, pushed with sigil copy), with three
        attachments: a signature, a SLSA attestation, an SBOM (cosign 2's tags)."""
        img = f"{work}/img-{name}"
        sh(f"make_image {img} {name} >/dev/null")
        if extra_layer_bytes:
            big = os.urandom(extra_layer_bytes)
            hx = hashlib.sha256(big).hexdigest()
            open(f"{img}/blobs/sha256/{hx}", "wb").write(big)
            index = json.load(open(f"{img}/index.json"))
            mdigest = index["manifests"][0]["digest"].split(":")[1]
            manifest = json.load(open(f"{img}/blobs/sha256/{mdigest}"))
            manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(big),
                                       "digest": f"sha256:{hx}"})
            mbytes = json.dumps(manifest, separators=(",", ":")).encode()
            mhex = hashlib.sha256(mbytes).hexdigest()
            open(f"{img}/blobs/sha256/{mhex}", "wb").write(mbytes)
            index["manifests"][0].update(digest=f"sha256:{mhex}", size=len(mbytes))
            json.dump(index, open(f"{img}/index.json", "w"))
        src = f"{a}/{name}:v1"
        run_env([sigil, "copy", HTTP, f"oci:{img}:v1", src], env)
        run_env([sigil, "sign", "--format", "legacy", "--tlog-upload=false", HTTP, "--key", key, src], env)
        run_env([sigil, "attest", "--format", "legacy", "--tlog-upload=false", HTTP, "--key", key,
                 "--type", "slsaprovenance1", "--predicate", slsa, src], env)
        run_env([cosign, "attach", "sbom", "--sbom", sbom, "--type", "spdx", HTTP, src], env)
        return src

    def tags(repo):
        out = subprocess.run(["curl", "-fsS", f"http://{b}/v2/{repo}/tags/list"], capture_output=True, text=True)
        return sorted(json.loads(out.stdout)["tags"] or [])

    print(f"sigil copy vs cosign copy (2.5) between two local docker-registry instances ({rounds} alternating")
    print("rounds; medians; a fresh destination repository each time; peak RSS under /usr/bin/time).")
    print("Each image has three attachments both tools copy: cosign 2's .sig, .att and .sbom tags")
    print("(cosign save/load carry the .sig and .att only). Every sigil copy to a registry waits out")
    print("concurrent writers (250 ms plus its own write time) before confirming what it wrote.")
    for name, extra in [("small", 0), ("large", 32 << 20)]:
        src = image(name, extra)
        res = {"s": [], "c": []}
        reqs = {"s": 0, "c": 0}
        for r in range(rounds):
            for tool in (["s", "c"] if r % 2 == 0 else ["c", "s"]):
                dst = f"{b}/{name}-{tool}{r}/app:v1"
                mark = log_b.mark()
                if tool == "s":
                    res["s"].append(run_env([sigil, "copy", HTTP, src, dst], env))
                else:
                    res["c"].append(run_env([cosign, "copy", HTTP, src, dst], env))
                if r == 0:
                    reqs[tool] = log_b.count_since(mark)
        # The air gap: into a layout (cosign save) and out of it into a registry (cosign load).
        for r in range(rounds):
            for tool in (["s", "c"] if r % 2 == 0 else ["c", "s"]):
                out = f"{work}/{name}-{tool}{r}"
                dst = f"{b}/{name}-load-{tool}{r}/app:v1"
                if tool == "s":
                    res.setdefault("ss", []).append(run_env([sigil, "copy", HTTP, src, f"oci:{out}"], env))
                    res.setdefault("sl", []).append(run_env([sigil, "copy", HTTP, f"oci:{out}", dst], env))
                else:
                    res.setdefault("cs", []).append(run_env([cosign, "save", HTTP, "--dir", out, src], env))
                    res.setdefault("cl", []).append(run_env([cosign, "load", HTTP, "--dir", out, dst], env))
        med = lambda k, i: median(res[k], i)
        what = "a 1 KiB image" if not extra else f"an image with a {extra >> 20} MiB layer"
        print()
        print(f"{what}:")
        print(f"{'case':38} {'sigil':>10} {'cosign':>10} {'ratio':>7}")
        print(f"{'copy: wall s':38} {med('s',0):10.3f} {med('c',0):10.3f} {med('s',0)/med('c',0):7.3f}")
        print(f"{'copy: peak RSS MiB':38} {med('s',1)/1024:10.1f} {med('c',1)/1024:10.1f} {med('s',1)/med('c',1):7.3f}")
        print(f"{'copy: requests to the destination':38} {reqs['s']:10d} {reqs['c']:10d} {reqs['s']/reqs['c']:7.3f}")
        for label, s_key, c_key in [("into a layout (cosign save)", "ss", "cs"), ("layout to registry (cosign load)", "sl", "cl")]:
            print(f"{label + ': wall s':38} {med(s_key,0):10.3f} {med(c_key,0):10.3f} {med(s_key,0)/med(c_key,0):7.3f}")
            print(f"{label + ': peak RSS MiB':38} {med(s_key,1)/1024:10.1f} {med(c_key,1)/1024:10.1f} "
                  f"{med(s_key,1)/med(c_key,1):7.3f}")
        print(f"tags at the destination: sigil {tags(f'{name}-s0/app')}; cosign {tags(f'{name}-c0/app')}")
finally:
    for pid in (a_pid, b_pid):
        subprocess.run(["kill", str(pid)])
