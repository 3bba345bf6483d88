"""sigil verify-blob vs cosign verify-blob vs sigstore-python; see bench-blob.sh."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import median, run  # noqa: E402

sigil, cosign, pysig, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
suite = os.path.join(root, "testdata/vectors/sigstore-conformance/bundle-verify")
trusted = os.path.join(root, "testdata/vectors/trust/public-good.trusted_root.json")
if not os.path.isdir(suite):
    sys.exit("testdata/vectors is missing: restore it from git")
ident = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
iss = "https://token.actions.githubusercontent.com"
art = f"{suite}/a.txt"
env = dict(os.environ, TUF_ROOT="/tmp/sigil-bench-tuf", HOME="/tmp/sigil-bench-home")

print(f"verify-blob, {rounds} alternating rounds (python: {max(3, rounds // 5)}); medians")
print(f"{'bundle':18} {'sigil ms':>9} {'cosign ms':>10} {'python ms':>10} {'s/cosign':>9} {'s/python':>9} {'sigil MiB':>10} {'cosign MiB':>11} {'RSS ratio':>10}")
for case in ["happy-path-v0.3", "happy-path-v0.2", "happy-path-v0.1"]:
    b = f"{suite}/{case}/bundle.sigstore.json"
    s_cmd = [sigil, "verify-blob", "--bundle", b, "--trusted-root", trusted, "--certificate-identity", ident, "--certificate-oidc-issuer", iss, art]
    c_cmd = [cosign, "verify-blob", "--new-bundle-format", "--trusted-root", trusted, "--bundle", b, "--certificate-identity", ident, "--certificate-oidc-issuer", iss, art]
    p_cmd = [pysig, "verify", "identity", "--offline", "--bundle", b, "--cert-identity", ident, "--cert-oidc-issuer", iss, art]
    s, c, p = [], [], []
    for r in range(rounds):
        s.append(run(s_cmd, env)); c.append(run(c_cmd, env))
        if r < max(3, rounds // 5):
            p.append(run(p_cmd, env))
    sm, cm, pm = median(s, 0) * 1e3, median(c, 0) * 1e3, median(p, 0) * 1e3
    sr, cr = median(s, 1) / 1024, median(c, 1) / 1024
    print(f"{case:18} {sm:9.1f} {cm:10.1f} {pm:10.1f} {sm/cm:9.3f} {sm/pm:9.4f} {sr:10.1f} {cr:11.1f} {sr/cr:10.3f}")
