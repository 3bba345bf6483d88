"""sigil vs cosign on a local docker-registry; see bench-registry.sh. Prints a table."""
import os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import RequestLog, median, run as run_env, run_wall  # noqa: E402

sigil, cosign, rounds, cosign3 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="sigil-bench-")
key, pub = f"{root}/keys-example/example.key", f"{root}/keys-example/example.pub"
password = open(f"{root}/keys-example/PASSWORD").read()
env = dict(os.environ, SIGIL_PASSWORD=password, COSIGN_PASSWORD=password,
           TUF_ROOT=f"{work}/tuf", HOME=work, DOCKER_CONFIG=f"{work}/docker")


def sh(script):
    return subprocess.run(["bash", "-c", f". {root}/scripts/lib.sh; {script}"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


def run(cmd):
    return run_env(cmd, env)


def measure(cmd):
    """For commands that change nothing (verification): the wall time of the command run
    directly, and its peak RSS from a second run under /usr/bin/time."""
    wall = run_wall(cmd, env)
    return wall, run(cmd)[1]


reg = f"{work}/reg"
host = sh(f"start_registry {reg} >/dev/null; echo $REGISTRY_HOST; echo $REGISTRY_PID > {work}/pid").splitlines()[0]
pid = int(open(f"{work}/pid").read())
log = RequestLog(f"{reg}/access.log")
try:
    def push(repo, seed):
        sh(f"make_image {work}/img-{seed} '{seed}' >/dev/null; push_image {work}/img-{seed} {host} {repo} v1")
        return f"{host}/{repo}:v1"

    # Images: one tagged image and 50 more, signed by sigil (both tools verify them).
    single = push("bench/single", "single")
    fifty = [push(f"bench/many{i}", f"many{i}") for i in range(50)]
    sig = lambda imgs: [sigil, "sign", "--format", "legacy", "--tlog-upload=false", "--allow-http-registry", "--key", key, *imgs]
    subprocess.run(sig([single] + fifty), check=True, capture_output=True, env=env)
    sv = lambda imgs: [sigil, "verify", "--insecure-ignore-tlog", "--allow-http-registry", "--key", pub, *imgs]
    cv = lambda imgs: [cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", *imgs]

    res = {k: [] for k in ["s1", "c1", "s50", "c50", "ss50", "cs50"]}
    for r in range(rounds):
        res["s1"].append(measure(sv([single]))); res["c1"].append(measure(cv([single])))
        res["c50"].append(measure(cv(fifty))); res["s50"].append(measure(sv(fifty)))
    # Signing 50 fresh images per round and tool (signing appends, so images are not reused).
    for r in range(min(rounds, 3)):
        s_imgs = [push(f"sign/s{r}x{i}", f"s{r}x{i}") for i in range(50)]
        c_imgs = [push(f"sign/c{r}x{i}", f"c{r}x{i}") for i in range(50)]
        res["ss50"].append(run(sig(s_imgs)))
        res["cs50"].append(run([cosign, "sign", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry", *c_imgs]))

    # Attestations: one image with a SLSA v1 attestation (by sigil; both tools verify it).
    att = push("bench/att", "att")
    slsa = f"{work}/slsa.json"
    with open(slsa, "w") as f:
        f.write('{"buildDefinition":{"buildType":"https://example.com/t","externalParameters":{}},'
                '"runDetails":{"builder":{"id":"https://example.com/builder"}}}')
    subprocess.run([sigil, "attest", "--format", "legacy", "--tlog-upload=false", "--allow-http-registry", "--key", key, "--type", "slsaprovenance1",
                    "--predicate", slsa, att], check=True, capture_output=True, env=env)
    sva = [sigil, "verify-attestation", "--insecure-ignore-tlog", "--allow-http-registry", "--key", pub, "--type", "slsaprovenance1", att]
    cva = [cosign, "verify-attestation", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry",
           "--type", "slsaprovenance1", att]
    res["sa"], res["ca"] = [], []
    for r in range(rounds):
        res["sa"].append(measure(sva)); res["ca"].append(measure(cva))

    # A 200 MB SBOM attached (streamed from disk): sigil's peak RSS, and cosign's legacy attach.
    # Each tool gets its own file (the registry would otherwise already hold the blob).
    def make_sbom(path, tool):
        with open(path, "w") as f:
            f.write('{"spdxVersion":"SPDX-2.3","creator":"' + tool + '","packages":[')
            chunk = ",".join(f'{{"name":"pkg{i}","versionInfo":"1.0.{i}"}}' for i in range(10000))
            while f.tell() < 200_000_000:
                f.write(chunk + ",")
            f.write('{"name":"last"}]}')
    s_sbom, c_sbom = f"{work}/sbom-sigil.json", f"{work}/sbom-cosign.json"
    make_sbom(s_sbom, "sigil"); make_sbom(c_sbom, "cosign")
    sbom_mb = os.path.getsize(s_sbom) / 1e6
    big = push("bench/sbom", "sbom")
    res["sb"] = [run([sigil, "attach", "sbom", "--allow-http-registry", "--sbom", s_sbom, big])]
    res["cb"] = [run([cosign, "attach", "sbom", "--allow-http-registry", "--type", "spdx", "--sbom", c_sbom, big])]

    m = log.mark(); run(sv([single])); s_req = log.count_since(m)
    m = log.mark(); run(cv([single])); c_req = log.count_since(m)

    # The bundle format: an image signed by cosign 3.1.1 (key, no transparency log: a signing
    # config without services), stored as a referrer in the tag schema on this registry.
    subprocess.run([cosign3, "signing-config", "create", "--out", f"{work}/signing-config.json"], check=True,
                   capture_output=True, env=env)
    subprocess.run([cosign3, "trusted-root", "create", "--out", f"{work}/trusted-root.json"], check=True,
                   capture_output=True, env=env)
    b3 = push("bench/bundle", "bundle")
    subprocess.run([cosign3, "sign", "--key", key, "--signing-config", f"{work}/signing-config.json",
                    "--trusted-root", f"{work}/trusted-root.json", "--allow-http-registry", "--yes", b3],
                   check=True, capture_output=True, env=env)
    sb3 = [sigil, "verify", "--insecure-ignore-tlog", "--allow-http-registry", "--key", pub, b3]
    cb3 = [cosign3, "verify", "--key", pub, "--trusted-root", f"{work}/trusted-root.json", "--insecure-ignore-tlog",
           "--allow-http-registry", b3]
    res["sb3"], res["cb3"] = [], []
    for r in range(rounds):
        res["sb3"].append(measure(sb3)); res["cb3"].append(measure(cb3))
    m = log.mark(); run(sb3); s3_req = log.count_since(m)
    m = log.mark(); run(cb3); c3_req = log.count_since(m)

    med = median
    print(f"sigil vs cosign on a local docker-registry ({rounds} alternating rounds; medians;")
    print("verification wall times of the command alone, peak RSS under /usr/bin/time)")
    print(f"{'case':38} {'sigil':>10} {'cosign':>10} {'ratio':>7}")
    for name, s, c in [("verify 1 tagged image: wall s", "s1", "c1"),
                       ("verify 50 images, one call: wall s", "s50", "c50"),
                       ("sign 50 images, one call: wall s", "ss50", "cs50"),
                       ("verify-attestation 1 image: wall s", "sa", "ca"),
                       (f"attach {sbom_mb:.0f} MB SBOM: wall s", "sb", "cb")]:
        print(f"{name:38} {med(res[s],0):10.3f} {med(res[c],0):10.3f} {med(res[s],0)/med(res[c],0):7.3f}")
    for name, s, c in [("verify 1 tagged image: peak RSS MiB", "s1", "c1"),
                       ("verify 50 images: peak RSS MiB", "s50", "c50"),
                       ("sign 50 images: peak RSS MiB", "ss50", "cs50"),
                       ("verify-attestation: peak RSS MiB", "sa", "ca"),
                       (f"attach {sbom_mb:.0f} MB SBOM: peak RSS MiB", "sb", "cb")]:
        print(f"{name:38} {med(res[s],1)/1024:10.1f} {med(res[c],1)/1024:10.1f} {med(res[s],1)/med(res[c],1):7.3f}")
    print(f"{'requests, verify 1 tagged image':38} {s_req:10d} {c_req:10d} {s_req/c_req:7.3f}")
    print()
    print(f"bundle format: an image signed by cosign 3.1.1, verified by sigil and by cosign 3.1.1")
    print(f"{'case':38} {'sigil':>10} {'cosign 3':>10} {'ratio':>7}")
    print(f"{'verify 1 tagged image: wall s':38} {med(res['sb3'],0):10.3f} {med(res['cb3'],0):10.3f} "
          f"{med(res['sb3'],0)/med(res['cb3'],0):7.3f}")
    print(f"{'verify 1 tagged image: peak RSS MiB':38} {med(res['sb3'],1)/1024:10.1f} {med(res['cb3'],1)/1024:10.1f} "
          f"{med(res['sb3'],1)/med(res['cb3'],1):7.3f}")
    print(f"{'requests, verify 1 tagged image':38} {s3_req:10d} {c3_req:10d} {s3_req/c3_req:7.3f}")
finally:
    os.kill(pid, 15)
