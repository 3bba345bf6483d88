"""sigil vs cosign 3.1.1 signing against the local Sigstore stack; see bench-sigstore.sh.

Two stacks, one after the other, both tools alternating on each:
- `default`: the stack as the tests run it. Rekor v2 publishes a checkpoint every 2 s and looks
  for the one covering a new entry every 1 s (rekor-tiles hard-codes that poll); the CT log
  sequences every 1 s. A signing waits for all of that whoever the client is.
- `fast`: the same services with those waits at their minimum (Tessera refuses a checkpoint
  interval under 100 ms), so that what remains is closer to the client's own cost.
Besides wall time and peak RSS, the client's CPU time (user + system) is reported: the work a
client does, which the services' waits do not blur."""
import os, shlex, subprocess, sys, tempfile, time, statistics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run_wall  # noqa: E402

sigil, cosign3, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="sigil-bench-sigstore-")
key, pub = f"{root}/keys-example/example.key", f"{root}/keys-example/example.pub"
password = open(f"{root}/keys-example/PASSWORD").read()
stack = f"{root}/scripts/sigstack/sigstack.sh"
# The stack's build (sigstack.sh setup) lives in SIGSTACK_DIR, by default under the real HOME.
sigstack_dir = os.environ.get("SIGSTACK_DIR", os.path.expanduser("~/.cache/sigstack"))
env = dict(os.environ, SIGSTACK_DIR=sigstack_dir, SIGIL_PASSWORD=password, COSIGN_PASSWORD=password,
           TUF_ROOT=f"{work}/tuf", HOME=work, DOCKER_CONFIG=f"{work}/docker", SIGIL_TUF_CACHE=f"{work}/tuf-sigil")
FAST = ["--rekor-checkpoint-interval", "100ms", "--rekor-batch-max-age", "20ms", "--rekor-await-poll", "20ms",
        "--ct-period", "50"]


def sh(script):
    return subprocess.run(["bash", "-c", f". {root}/scripts/lib.sh; {script}"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


def timed(cmd):
    """Wall seconds, peak RSS (KiB, GNU time's %M: the command's own) and CPU seconds (user +
    system, from wait4 on /usr/bin/time, which includes the command it reaped: microseconds,
    where GNU time prints 10 ms steps)."""
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])}…\n{err[-2000:].decode(errors='replace')}")
    return wall, int(err.decode().strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime


def measure(name, start_args, refreg_host):
    run = f"{work}/stack-{name}"
    senv = dict(env, SIGSTACK_RUN=run)
    out = subprocess.run(["bash", stack, "start", "--free-ports", *start_args], check=True, capture_output=True,
                         text=True, env=senv).stdout
    s = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            s[k] = shlex.split(v)[0] if v else ""
    try:
        tr, sc = s["SIGSTACK_TRUSTED_ROOT"], s["SIGSTACK_SIGNING_CONFIG"]
        sigstore = ["--signing-config", sc, "--trusted-root", tr]

        def token():
            return subprocess.run([s["SIGSTACK_TOKEN_CMD"], "bench@example.com"], check=True, capture_output=True,
                                  text=True).stdout.strip()

        def image(seed):
            hexdigest = sh(f"make_image {work}/img-{name}-{seed} '{name}-{seed}'")
            sh(f"push_image {work}/img-{name}-{seed} {refreg_host} bench/{name}-{seed} v1")
            return f"{refreg_host}/bench/{name}-{seed}@sha256:{hexdigest}"

        res = {k: [] for k in ["ss", "cs", "sb", "cb", "sv", "cv"]}
        for r in range(rounds):
            si, ci = image(f"s{r}"), image(f"c{r}")
            res["ss"].append(timed([sigil, "sign", "--allow-http-registry", "--identity-token", token(), *sigstore, si]))
            res["cs"].append(timed([cosign3, "sign", "--yes", "--allow-http-registry", "--identity-token", token(),
                                    *sigstore, ci]))
            res["sb"].append(timed([sigil, "sign-blob", "--identity-token", token(), *sigstore, "--bundle",
                                    f"{work}/{name}-s{r}.json", blob]))
            res["cb"].append(timed([cosign3, "sign-blob", "--yes", "--identity-token", token(), *sigstore, "--bundle",
                                    f"{work}/{name}-c{r}.json", blob]))
        # Key-based verify with the log entry checked: an image signed with the key by cosign 3.1.1.
        vi = image("verify")
        subprocess.run([cosign3, "sign", "--yes", "--allow-http-registry", "--key", key, *sigstore, vi], check=True,
                       capture_output=True, env=env)
        sv = [sigil, "verify", "--allow-http-registry", "--key", pub, "--trusted-root", tr, vi]
        cv = [cosign3, "verify", "--allow-http-registry", "--key", pub, "--trusted-root", tr, vi]
        for r in range(rounds):
            res["sv"].append((run_wall(sv, env), *timed(sv)[1:]))
            res["cv"].append((run_wall(cv, env), *timed(cv)[1:]))
        return res
    finally:
        subprocess.run(["bash", stack, "stop"], capture_output=True, env=senv)
        subprocess.run(["bash", stack, "clean"], capture_output=True, env=senv)


def med(samples, i):
    return statistics.median(s[i] for s in samples)


blob = f"{work}/artifact.tar.gz"
with open(blob, "wb") as f:
    f.write(os.urandom(4 << 20))
refreg_log = open(f"{work}/refreg.log", "w")
port = sh("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'")
refreg = subprocess.Popen([f"{root}/.tools/refreg", "-address", f"127.0.0.1:{port}"], stdout=refreg_log, stderr=refreg_log)
try:
    sh(f"for _ in $(seq 200); do curl -fs http://127.0.0.1:{port}/v2/ >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1")
    results = {name: measure(name, args, f"127.0.0.1:{port}") for name, args in [("default", []), ("fast", FAST)]}
finally:
    refreg.terminate()

print(f"sigil vs cosign 3.1.1 against the local Sigstore stack ({rounds} alternating rounds; medians)")
print(f"{'case':46} {'stack':>8} {'sigil':>9} {'cosign 3':>9} {'ratio':>7} {'target':>7}")
rows = [("keyless sign 1 image: wall s", "ss", "cs", 0, 1, "0.50"),
        ("keyless sign-blob (4 MiB): wall s", "sb", "cb", 0, 1, "0.50"),
        ("key verify 1 image, tlog checked: wall s", "sv", "cv", 0, 1, "0.20"),
        ("keyless sign 1 image: peak RSS MiB", "ss", "cs", 1, 1024, "0.25"),
        ("keyless sign-blob: peak RSS MiB", "sb", "cb", 1, 1024, "0.25"),
        ("key verify 1 image: peak RSS MiB", "sv", "cv", 1, 1024, ""),
        ("keyless sign 1 image: client CPU s", "ss", "cs", 2, 1, ""),
        ("keyless sign-blob: client CPU s", "sb", "cb", 2, 1, ""),
        ("key verify 1 image: client CPU s", "sv", "cv", 2, 1, "")]
for label, a, b, i, scale, target in rows:
    for name in ["default", "fast"]:
        res = results[name]
        x, y = med(res[a], i) / scale, med(res[b], i) / scale
        print(f"{label:46} {name:>8} {x:9.3f} {y:9.3f} {x / y:7.3f} {target:>7}")
