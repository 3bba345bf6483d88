"""The admission webhook under wrk; see bench-gate.sh. Prints a table."""
import json, os, re, socket, ssl, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run_wall  # noqa: E402

sigil = sys.argv[1]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="sigil-bench-gate-")
key, pub = f"{root}/keys-example/example.key", f"{root}/keys-example/example.pub"
password = open(f"{root}/keys-example/PASSWORD").read()
env = dict(os.environ, SIGIL_PASSWORD=password, HOME=work, DOCKER_CONFIG=f"{work}/docker")
COLD = 400          # distinct images, one verification each
TOTAL = 100_000     # reviews before the memory reading


def sh(script):
    return subprocess.run(["bash", "-c", f". {root}/scripts/lib.sh; {script}"], check=True,
                          capture_output=True, text=True, env=env).stdout.strip()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def review(uid, image):
    with open(f"{root}/testdata/admission/pod-create.json") as f:
        r = json.load(f)
    r["request"]["uid"] = uid
    spec = r["request"]["object"]["spec"]
    spec["containers"] = [dict(spec["containers"][0], image=image)]
    spec.pop("initContainers", None)
    return json.dumps(r, separators=(",", ":"))


LUA = r'''
local bodies, n = {}, 0
local limit = tonumber(os.getenv("LIMIT") or "0")
init = function(args)
  for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
end
request = function()
  n = n + 1
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, bodies[((n - 1) % #bodies) + 1])
end
response = function(status, headers, body)
  if limit > 0 and n >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f %.1f\n", summary.requests, summary.errors.status,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.mean))
end
'''


def wrk(bodies, threads, conns, seconds, limit=0):
    path = f"{work}/bodies-{len(bodies)}.txt"
    with open(path, "w") as f:
        f.write("\n".join(bodies) + "\n")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "-s", f"{work}/post.lua",
                          f"https://127.0.0.1:{port}"], capture_output=True, text=True,
                         env=dict(env, BODIES=path, LIMIT=str(limit)), check=True).stdout
    m = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    requests, non2xx, micros, p50, p99, mean = m.groups()
    return dict(requests=int(requests), errors=int(non2xx), rate=int(requests) / (int(micros) / 1e6),
                p50=float(p50) / 1000, p99=float(p99) / 1000, mean=float(mean) / 1000)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        st = dict(l.split(":", 1) for l in f)
    return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])


with open(f"{work}/post.lua", "w") as f:
    f.write(LUA)
reg = f"{work}/reg"
host = sh(f"start_registry {reg} >/dev/null; echo $REGISTRY_HOST; echo $REGISTRY_PID > {work}/pid").splitlines()[0]
reg_pid = int(open(f"{work}/pid").read())
hook = None
try:
    def push(repo, seed):
        sh(f"make_image {work}/img-{seed} '{seed}' >/dev/null; push_image {work}/img-{seed} {host} {repo} v1")
        return f"{host}/{repo}:v1"

    warm = push("bench/warm", "warm")
    cold = [push(f"bench/cold{i}", f"cold{i}") for i in range(COLD)]
    subprocess.run([sigil, "sign", "--format", "legacy", "--tlog-upload=false", "--allow-http-registry", "--key", key,
                    warm, *cold], check=True, capture_output=True, env=env)
    with open(f"{work}/policy.yaml", "w") as f:
        f.write(f'apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: bench\n    images: ["{host}/bench/**"]\n'
                f'    authorities: [{{name: k, key: {{path: {pub}}}, transparencyLog: ignore}}]\n')
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{work}/tls.key", "-out", f"{work}/tls.crt", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.create_default_context(cafile=f"{work}/tls.crt")

    def start_webhook(*flags):
        """`sigil webhook` on a free port with `flags`, once it says it is ready."""
        p = free_port()
        h = subprocess.Popen([sigil, "webhook", "--policy", f"{work}/policy.yaml", "--tls-cert", f"{work}/tls.crt",
                              "--tls-key", f"{work}/tls.key", "--listen", f"127.0.0.1:{p}", "--allow-http-registry",
                              *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"https://127.0.0.1:{p}/readyz", context=ctx, timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        return h, p

    hook, port = start_webhook()
    # Every review the load sends is one the webhook allows (checked once, here).
    for image in (warm, cold[0]):
        req = urllib.request.Request(f"https://127.0.0.1:{port}/validate", data=review("check", image).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(req, context=ctx, timeout=30))
        assert answer["response"]["allowed"] is True, answer

    # Cold: each review names an image not seen before (a tag: resolved, then verified), one at
    # a time; and `sigil verify` of images of the same kind, one process per image.
    cold_run = wrk([review(f"c{i}", image) for i, image in enumerate(cold[1:])], 1, 1, 60, limit=COLD - 1)
    verify = sorted(run_wall([sigil, "verify", "--insecure-ignore-tlog", "--allow-http-registry", "--key", pub, image], env)
                    for image in cold[1:40])
    verify_p50 = verify[len(verify) // 2]

    # Warm: one image, its verdict cached.
    warm_body = [review("w", warm)]
    wrk(warm_body, 1, 4, 2)  # warm-up
    rss_start, _ = rss_kib(hook.pid)
    runs, done = [], 0
    while done < TOTAL:
        r = wrk(warm_body, 2, 16, 5)
        runs.append(r); done += r["requests"]
    rss_end, hwm = rss_kib(hook.pid)
    levels = [(1, 1), (1, 4), (2, 8), (2, 16)]
    by_level = {(t, c): wrk(warm_body, t, c, 5) for t, c in levels}
    best = max(runs, key=lambda r: r["rate"])

    # The cache bound: a second webhook keeping at most 100 verdicts, under reviews cycling
    # through the 400 images (each review a miss, one verification) ten times over.
    hook.terminate(); hook.wait()
    hook, port = start_webhook("--cache-size", "100")
    cycling = [review(f"b{i}", image) for i, image in enumerate(cold)]
    first = wrk(cycling, 1, 4, 60, limit=len(cycling))
    bound_start, _ = rss_kib(hook.pid)
    bounded = wrk(cycling, 1, 4, 120, limit=10 * len(cycling))
    bound_end, bound_hwm = rss_kib(hook.pid)
    errors = sum(r["errors"] for r in runs) + cold_run["errors"] + sum(r["errors"] for r in by_level.values())
    errors += first["errors"] + bounded["errors"]

    print("sigil webhook under wrk, local docker-registry, this machine's 2 cores shared by wrk and the webhook")
    print(f"{'case':58} {'value':>12} {'target':>10}")
    print(f"{'warm cache, most sustained (2 threads x 16 connections): reviews/s':58} {best['rate']:12.0f} {'>= 1000':>10}")
    for (t, c), r in by_level.items():
        print(f"{f'warm cache, {c} connection(s): reviews/s':58} {r['rate']:12.0f}")
        print(f"{f'warm cache, {c} connection(s): p50 / p99 ms':58} {r['p50']:5.2f} /{r['p99']:5.2f} {'p99 <= 2':>10}")
    label = f"cold cache, {cold_run['requests']} reviews one at a time: p50 ms"
    print(f"{label:58} {cold_run['p50']:12.2f}")
    print(f"{'cold cache: p99 ms':58} {cold_run['p99']:12.2f}")
    print(f"{'sigil verify of one such image (a process each), median ms':58} {verify_p50 * 1000:12.2f}")
    print(f"{'cold review / sigil verify':58} {cold_run['p50'] / (verify_p50 * 1000):12.3f}")
    print(f"{'reviews in all (warm, after the cold ones)':58} {done:12d}")
    print(f"{'resident memory after the cold reviews and warm-up, MiB':58} {rss_start / 1024:12.1f}")
    label = f"resident memory after {done} more reviews, MiB"
    print(f"{label:58} {rss_end / 1024:12.1f}")
    print(f"{'peak resident memory, MiB':58} {hwm / 1024:12.1f}")
    label = f"--cache-size 100, {bounded['requests']} reviews over {len(cycling)} images: RSS before / after MiB"
    print(f"{label:58} {bound_start / 1024:5.1f} /{bound_end / 1024:5.1f}")
    print(f"{'  (those reviews, one verification each: p50 / p99 ms)':58} {bounded['p50']:5.2f} /{bounded['p99']:5.2f}")
    print(f"{'non-2xx answers':58} {errors:12d} {'0':>10}")
finally:
    if hook:
        hook.terminate(); hook.wait()
    os.kill(reg_pid, 15)
