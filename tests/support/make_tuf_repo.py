"""Writes a small TUF repository (python-tuf) that serves a given trusted_root.json, the way
Sigstore's TUF repository does: consistent snapshots, targets named <sha256>.<name>.

    python make_tuf_repo.py OUT_DIR TRUSTED_ROOT_JSON [EXPIRES_DAYS]

With SIGNING_CONFIG=FILE in the environment it also serves that file as the target
signing_config.v0.2.json, as Sigstore's repository does.

OUT_DIR/repo is the repository to serve; OUT_DIR/root.json is the root to pin. A test
double for tuf-repo-cdn.sigstore.dev, which cannot be reached from here."""
import hashlib, os, shutil, sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

out, trusted_root, days = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 7
expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)
repo = os.path.join(out, "repo")
os.makedirs(os.path.join(repo, "targets"), exist_ok=True)

signers = {role: CryptoSigner.generate_ed25519() for role in ("root", "targets", "snapshot", "timestamp")}
root = Root(expires=expires, consistent_snapshot=True)
for role, s in signers.items():
    root.add_key(s.public_key, role)

data = open(trusted_root, "rb").read()
digest = hashlib.sha256(data).hexdigest()
with open(os.path.join(repo, "targets", f"{digest}.trusted_root.json"), "wb") as f:
    f.write(data)
targets = Targets(expires=expires)
targets.targets["trusted_root.json"] = TargetFile.from_data("trusted_root.json", data, ["sha256"])
if os.environ.get("SIGNING_CONFIG"):
    sc = open(os.environ["SIGNING_CONFIG"], "rb").read()
    with open(os.path.join(repo, "targets", f"{hashlib.sha256(sc).hexdigest()}.signing_config.v0.2.json"), "wb") as f:
        f.write(sc)
    targets.targets["signing_config.v0.2.json"] = TargetFile.from_data("signing_config.v0.2.json", sc, ["sha256"])

def write(md, role, name):
    md.sign(signers[role])
    md.to_file(os.path.join(repo, name))

root_md = Metadata(root)
write(root_md, "root", "1.root.json")
write(Metadata(targets), "targets", "1.targets.json")
snapshot = Snapshot(expires=expires)
snapshot.meta["targets.json"] = MetaFile(version=1)
write(Metadata(snapshot), "snapshot", "1.snapshot.json")
timestamp = Timestamp(expires=expires)
timestamp.snapshot_meta = MetaFile(version=1)
write(Metadata(timestamp), "timestamp", "timestamp.json")
shutil.copy(os.path.join(repo, "1.root.json"), os.path.join(out, "root.json"))
