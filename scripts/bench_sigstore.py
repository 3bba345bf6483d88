"""sigil vs cosign 3.1.1 signing against the local Sigstore stack; see bench-sigstore.sh."""
import os, shlex, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import median, run as run_env, run_wall  # noqa: E402

sigil, cosign3, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="sigil-bench-sigstore-")
key, pub = f"{root}/keys-example/example.key", f"{root}/keys-example/example.pub"
password = open(f"{root}/keys-example/PASSWORD").read()
stack = f"{root}/scripts/sigstack/sigstack.sh"
# The stack's build (sigstack.sh setup) lives in SIGSTACK_DIR, by default under the real HOME.
sigstack_dir = os.environ.get("SIGSTACK_DIR", os.path.expanduser("~/.cache/sigstack"))
env = dict(os.environ, SIGSTACK_DIR=sigstack_dir, SIGIL_PASSWORD=password, COSIGN_PASSWORD=password, TUF_ROOT=f"{work}/tuf",
           HOME=work, DOCKER_CONFIG=f"{work}/docker", SIGSTACK_RUN=f"{work}/stack", SIGIL_TUF_CACHE=f"{work}/tuf-sigil")


def sh(script):
    return subprocess.run(["bash", "-c", f". {root}/scripts/lib.sh; {script}"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


out = subprocess.run(["bash", stack, "start", "--free-ports"], check=True, capture_output=True, text=True, env=env).stdout
s = {}
for line in out.splitlines():
    if line.startswith("export ") and "=" in line:
        k, v = line[len("export "):].split("=", 1)
        s[k] = shlex.split(v)[0] if v else ""
refreg_log = open(f"{work}/refreg.log", "w")
port = sh("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'")
refreg = subprocess.Popen([f"{root}/.tools/refreg", "-address", f"127.0.0.1:{port}"], stdout=refreg_log, stderr=refreg_log)
host = f"127.0.0.1:{port}"
try:
    sh(f"for _ in $(seq 200); do curl -fs http://{host}/v2/ >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1")
    tr, sc, iss = s["SIGSTACK_TRUSTED_ROOT"], s["SIGSTACK_SIGNING_CONFIG"], s["SIGSTACK_OIDC_ISSUER"]
    sigstore = ["--signing-config", sc, "--trusted-root", tr]

    def token():
        return subprocess.run([s["SIGSTACK_TOKEN_CMD"], "bench@example.com"], check=True, capture_output=True,
                              text=True).stdout.strip()

    def image(seed):
        hexdigest = sh(f"make_image {work}/img-{seed} '{seed}'")
        sh(f"push_image {work}/img-{seed} {host} bench/{seed} v1")
        return f"{host}/bench/{seed}@sha256:{hexdigest}"

    blob = f"{work}/artifact.tar.gz"
    with open(blob, "wb") as f:
        f.write(os.urandom(4 << 20))

    res = {k: [] for k in ["ss", "cs", "sb", "cb", "sv", "cv"]}
    for r in range(rounds):
        # Keyless sign of one image: a fresh image for each (signing adds a referrer).
        si, ci = image(f"s{r}"), image(f"c{r}")
        res["ss"].append(run_env([sigil, "sign", "--allow-http-registry", "--identity-token", token(), *sigstore, si], env))
        res["cs"].append(run_env([cosign3, "sign", "--yes", "--allow-http-registry", "--identity-token", token(), *sigstore, ci], env))
        res["sb"].append(run_env([sigil, "sign-blob", "--identity-token", token(), *sigstore, "--bundle",
                                  f"{work}/s{r}.json", blob], env))
        res["cb"].append(run_env([cosign3, "sign-blob", "--yes", "--identity-token", token(), *sigstore, "--bundle",
                                  f"{work}/c{r}.json", blob], env))
    # Key-based verify with the transparency-log entry checked: one image signed with the key
    # by cosign 3.1.1 (recorded in Rekor v2, timestamped), verified by both.
    vi = image("verify")
    subprocess.run([cosign3, "sign", "--yes", "--allow-http-registry", "--key", key, *sigstore, vi], check=True,
                   capture_output=True, env=env)
    sv = [sigil, "verify", "--allow-http-registry", "--key", pub, "--trusted-root", tr, vi]
    cv = [cosign3, "verify", "--allow-http-registry", "--key", pub, "--trusted-root", tr, vi]
    for r in range(rounds):
        res["sv"].append((run_wall(sv, env), run_env(sv, env)[1]))
        res["cv"].append((run_wall(cv, env), run_env(cv, env)[1]))

    print(f"sigil vs cosign 3.1.1 against the local Sigstore stack ({rounds} alternating rounds; medians;")
    print("signing: wall and peak RSS of one run under /usr/bin/time; verify: wall of the command alone)")
    print(f"{'case':44} {'sigil':>9} {'cosign 3':>9} {'ratio':>7} {'target':>7}")
    for name, a, b, target in [("keyless sign 1 image: wall s", "ss", "cs", 0.5),
                               ("keyless sign-blob (4 MiB): wall s", "sb", "cb", 0.5),
                               ("key verify 1 image, tlog checked: wall s", "sv", "cv", 0.2)]:
        x, y = median(res[a], 0), median(res[b], 0)
        print(f"{name:44} {x:9.3f} {y:9.3f} {x / y:7.3f} {target:7.2f}")
    for name, a, b, target in [("keyless sign 1 image: peak RSS MiB", "ss", "cs", 0.25),
                               ("keyless sign-blob: peak RSS MiB", "sb", "cb", 0.25),
                               ("key verify 1 image: peak RSS MiB", "sv", "cv", None)]:
        x, y = median(res[a], 1) / 1024, median(res[b], 1) / 1024
        t = f"{target:7.2f}" if target else f"{'':>7}"
        print(f"{name:44} {x:9.1f} {y:9.1f} {x / y:7.3f} {t}")
finally:
    refreg.terminate()
    subprocess.run(["bash", stack, "stop"], capture_output=True, env=env)
    subprocess.run(["bash", stack, "clean"], capture_output=True, env=env)
