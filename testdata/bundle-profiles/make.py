#!/usr/bin/env python3
"""Regenerates the certificate-profile and timestamp bundle vectors in this directory.

See README.md for what each case is and what a verifier must say about it.

Independent of sigil on purpose: certificates are built with python3-cryptography, RFC 3161
tokens are made by `openssl ts` (the OpenSSL CLI), and everything else (the Rekor v2 entry,
its checkpoint, the embedded SCT, the trusted roots) is assembled here from the formats'
specifications, every signature made by python3-cryptography. One private Sigstore instance
(Fulcio-like root and intermediate, a CT log, a Rekor v2 log, a TSA) is made per run; its
private keys live only in a temporary folder.

Keys are fresh and ECDSA signatures randomised, so a re-run changes every byte but not the
meaning of a case. Signing time is the time of the run (`openssl ts` stamps the current
time); the certificates' validity windows are set around it, so the vectors keep their
meaning forever (verification happens at the signed time, not the current one).

    python3 testdata/bundle-profiles/make.py      (needs python3-cryptography and openssl)
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)
ARTIFACT = b"sigil bundle-profile vector\n"
IDENTITY = "signer@example.com"
OIDC_ISSUER = "https://issuer.example.com"
FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
LOG_ORIGIN = "rekor.sigil-vectors.invalid"

b64 = lambda b: base64.b64encode(b).decode()
sha256 = lambda b: hashlib.sha256(b).digest()


def key():
    return ec.generate_private_key(ec.SECP256R1())


def spki(k):
    return k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(k, data):
    return k.sign(data, ec.ECDSA(hashes.SHA256()))


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigil vectors"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key_usage(**on):
    flags = dict.fromkeys(
        ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"],
        False,
    )
    flags.update(on)
    return x509.KeyUsage(encipher_only=False, decipher_only=False, **flags)


def builder(subject, subject_key, issuer, not_before, not_after, extensions):
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    return b


def cert(subject, subject_key, issuer, issuer_key, not_before, not_after, extensions):
    return builder(subject, subject_key, issuer, not_before, not_after, extensions).sign(issuer_key, hashes.SHA256())


def der(c):
    return c.public_bytes(serialization.Encoding.DER)


class Instance:
    """A private Sigstore instance: Fulcio root, CT log, Rekor v2 log, TSAs."""

    def __init__(self):
        self.root_key = key()
        self.root = cert(
            name("vectors-root"), self.root_key, name("vectors-root"), self.root_key, NOW - 3650 * DAY, NOW + 3650 * DAY,
            [(x509.BasicConstraints(ca=True, path_length=None), True), (key_usage(key_cert_sign=True, crl_sign=True), True)],
        )
        self.ct_key, self.rekor_key = key(), key()
        self.tsas = {n: self.tsa(n) for n in ("tsa", "unknown-tsa", "retired-tsa")}

    def tsa(self, cn):
        root_key, leaf_key = key(), key()
        root = cert(
            name(cn + "-root"), root_key, name(cn + "-root"), root_key, NOW - 3650 * DAY, NOW + 3650 * DAY,
            [(x509.BasicConstraints(ca=True, path_length=None), True), (key_usage(key_cert_sign=True, crl_sign=True), True)],
        )
        leaf = cert(
            name(cn), leaf_key, root.subject, root_key, NOW - DAY, NOW + 3650 * DAY,
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (key_usage(digital_signature=True), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
            ],
        )
        return {"key": leaf_key, "leaf": leaf, "root": root}

    def intermediate(self, *, ca=True, usage=None, not_before=None, not_after=None):
        k = key()
        usage = usage if usage is not None else key_usage(key_cert_sign=True, crl_sign=True)
        exts = [(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True), (usage, True)]
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False))
        c = cert(
            name("vectors-intermediate"), k, self.root.subject, self.root_key,
            not_before or NOW - 30 * DAY, not_after or NOW + 3650 * DAY, exts,
        )
        return k, c

    def leaf(self, issuer_key, issuer, *, usage="digitalSignature"):
        """A Fulcio-profile signing certificate with one embedded SCT (RFC 6962 §3.3)."""
        k = key()
        exts = []
        if usage == "digitalSignature":
            exts.append((key_usage(digital_signature=True), True))
        elif usage == "nonRepudiation":
            exts.append((key_usage(content_commitment=True), True))
        exts += [
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False),
            (x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), True),
            # Fulcio's OIDC issuer (v2): a DER UTF8String.
            (x509.UnrecognizedExtension(FULCIO_ISSUER_V2, b"\x0c" + der_len(len(OIDC_ISSUER)) + OIDC_ISSUER.encode()), False),
        ]
        b = builder(x509.Name([]), k, issuer.subject, NOW - 60 * datetime.timedelta(seconds=1), NOW + 10 * 60 * datetime.timedelta(seconds=1), exts)
        # The precertificate TBS is the final TBS without the SCT extension: sign it first.
        tbs = b.sign(issuer_key, hashes.SHA256()).tbs_certificate_bytes
        millis = int(NOW.timestamp() * 1000)
        signed = (
            bytes([0, 0]) + struct.pack(">Q", millis) + struct.pack(">H", 1)
            + sha256(spki(issuer_key)) + struct.pack(">I", len(tbs))[1:] + tbs + struct.pack(">H", 0)
        )
        sig = sign(self.ct_key, signed)
        sct = bytes([0]) + sha256(spki(self.ct_key)) + struct.pack(">Q", millis) + struct.pack(">H", 0)
        sct += bytes([4, 3]) + struct.pack(">H", len(sig)) + sig
        sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
        value = b"\x04" + der_len(len(sct_list)) + sct_list
        return k, b.add_extension(x509.UnrecognizedExtension(SCT_LIST, value), critical=False).sign(issuer_key, hashes.SHA256())

    def timestamp(self, tsa, message, work):
        """An RFC 3161 TimeStampToken over `message`, made by `openssl ts`."""
        t = self.tsas[tsa]
        for n, v in (("msg", message), ("tsa.pem", t["leaf"].public_bytes(serialization.Encoding.PEM))):
            open(os.path.join(work, n), "wb").write(v)
        pem = t["key"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        open(os.path.join(work, "tsa.key"), "wb").write(pem)
        open(os.path.join(work, "serial"), "w").write("01\n")
        open(os.path.join(work, "tsa.cnf"), "w").write(
            "[tsa]\ndefault_tsa = t\n[t]\n"
            f"serial = {work}/serial\ncrypto_device = builtin\nsigner_digest = sha256\n"
            "default_policy = 1.3.6.1.4.1.57264.2\ndigests = sha256\naccuracy = secs:1\n"
            "ordering = no\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n"
        )
        run = lambda *a: subprocess.run(["openssl", "ts", *a], cwd=work, check=True, capture_output=True)
        run("-query", "-data", "msg", "-sha256", "-cert", "-no_nonce", "-out", "req.tsq")
        run("-reply", "-config", "tsa.cnf", "-section", "t", "-queryfile", "req.tsq", "-signer", "tsa.pem",
            "-inkey", "tsa.key", "-token_out", "-out", "token.der")
        return open(os.path.join(work, "token.der"), "rb").read()

    def tlog_entry(self, signer, signature):
        """A Rekor v2 hashedrekord 0.0.2 entry at index 0 of a two-leaf tree, with a signed checkpoint.

        `signer` is the signing certificate, or the managed key."""
        if isinstance(signer, x509.Certificate):
            verifier = {"keyDetails": "PKIX_ECDSA_P256_SHA_256", "x509Certificate": {"rawBytes": b64(der(signer))}}
        else:
            verifier = {"keyDetails": "PKIX_ECDSA_P256_SHA_256", "publicKey": {"rawBytes": b64(spki(signer))}}
        body = json.dumps(
            {
                "apiVersion": "0.0.2",
                "kind": "hashedrekord",
                "spec": {
                    "hashedRekordV002": {
                        "data": {"algorithm": "SHA2_256", "digest": b64(sha256(ARTIFACT))},
                        "signature": {"content": b64(signature), "verifier": verifier},
                    }
                },
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        other = sha256(b"\x00" + b"another entry")
        root = sha256(b"\x01" + sha256(b"\x00" + body) + other)
        note = f"{LOG_ORIGIN}\n2\n{b64(root)}\n"
        log_id = sha256(spki(self.rekor_key))
        envelope = note + f"\n\u2014 {LOG_ORIGIN} {b64(log_id[:4] + sign(self.rekor_key, note.encode()))}\n"
        return {
            "logIndex": "0",
            "logId": {"keyId": b64(log_id)},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": b64(root),
                "treeSize": "2",
                "hashes": [b64(other)],
                "checkpoint": {"envelope": envelope},
            },
            "canonicalizedBody": b64(body),
        }

    def trusted_root(self, intermediate, *, ca_valid_for=None, retired_window=True):
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
        window = lambda start, end=None: {"start": iso(start), **({"end": iso(end)} if end else {})}
        key_entry = lambda k, url, start: {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": window(start)},
            "logId": {"keyId": b64(sha256(spki(k)))},
        }
        tsa = lambda n, valid_for: {
            "subject": {"organization": "sigil vectors", "commonName": n},
            "uri": f"https://{n}.sigil-vectors.invalid",
            "certChain": {"certificates": [{"rawBytes": b64(der(self.tsas[n]["leaf"]))}, {"rawBytes": b64(der(self.tsas[n]["root"]))}]},
            "validFor": valid_for,
        }
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [key_entry(self.rekor_key, f"https://{LOG_ORIGIN}", NOW - 30 * DAY)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigil vectors", "commonName": "vectors-root"},
                    "uri": "https://fulcio.sigil-vectors.invalid",
                    "certChain": {"certificates": [{"rawBytes": b64(der(intermediate))}, {"rawBytes": b64(der(self.root))}]},
                    "validFor": ca_valid_for or window(NOW - 30 * DAY),
                }
            ],
            "ctlogs": [key_entry(self.ct_key, "https://ct.sigil-vectors.invalid", NOW - 30 * DAY)],
            # "retired-tsa" was trusted only long before the signing time.
            "timestampAuthorities": [
                tsa("tsa", window(NOW - 30 * DAY)),
                tsa("retired-tsa", window(NOW - 7300 * DAY, NOW - 3650 * DAY)),
            ],
        }


def bundle(signer, signature, entry, tokens):
    if isinstance(signer, x509.Certificate):
        material = {"certificate": {"rawBytes": b64(der(signer))}}
    else:
        material = {"publicKey": {"hint": b64(sha256(spki(signer)))}}
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            **material,
            "tlogEntries": [entry],
            "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": b64(t)} for t in tokens]},
        },
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(sha256(ARTIFACT))}, "signature": b64(signature)},
    }


def main():
    inst = Instance()
    work = tempfile.mkdtemp()
    try:
        open(os.path.join(HERE, "artifact.txt"), "wb").write(ARTIFACT)

        def case(name, intermediate=None, leaf_usage="digitalSignature", tokens=("tsa",), root_changes=None, managed_key=False):
            ik, ic = intermediate or inst.intermediate()
            if managed_key:
                lk = key()
                lc = lk
            else:
                lk, lc = inst.leaf(ik, ic, usage=leaf_usage)
            signature = sign(lk, ARTIFACT)
            made = []
            for t in tokens:
                if t == "same-again":
                    made.append(made[-1])
                elif t == "wrong-message":
                    made.append(inst.timestamp("tsa", b"some other signature", work))
                else:
                    made.append(inst.timestamp(t, signature, work))
            root = inst.trusted_root(ic)
            if root_changes:
                root_changes(root)
            d = os.path.join(HERE, name)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            for f, v in (("bundle.sigstore.json", bundle(lc, signature, inst.tlog_entry(lc, signature), made)), ("trusted_root.json", root)):
                open(os.path.join(d, f), "w").write(json.dumps(v, indent=2) + "\n")
            if managed_key:
                open(os.path.join(d, "key.pub"), "wb").write(
                    lk.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                )

        case("happy-path")
        # Intermediates from the trusted root get every RFC 5280 path check at the signing time.
        case("intermediate-not-ca", intermediate=inst.intermediate(ca=False))
        case("intermediate-without-keycertsign", intermediate=inst.intermediate(usage=key_usage(digital_signature=True, crl_sign=True)))
        case("intermediate-expired", intermediate=inst.intermediate(not_before=NOW - 400 * DAY, not_after=NOW - 200 * DAY))
        case("intermediate-not-yet-valid", intermediate=inst.intermediate(not_before=NOW + 200 * DAY))
        # The Fulcio certificate profile: key usage present, with digitalSignature.
        case("leaf-without-key-usage", leaf_usage=None)
        case("leaf-without-digital-signature", leaf_usage="nonRepudiation")
        # Timestamps that do not verify are ignored; verified ones count once per authority.
        case("timestamp-wrong-message", tokens=("wrong-message", "tsa"))
        case("timestamp-unknown-tsa", tokens=("unknown-tsa", "tsa"))
        case("timestamp-outside-tsa-validity", tokens=("retired-tsa", "tsa"))
        case("timestamp-none-verified", tokens=("wrong-message", "unknown-tsa"))
        case("timestamp-duplicate", tokens=("tsa", "same-again"))
        case("timestamp-twice-from-one-tsa", tokens=("tsa", "tsa"))
        # Managed keys: a Rekor v2 entry has no integrated time, so the timestamp is the only time.
        case("managed-key-happy-path", managed_key=True)
        case("managed-key-timestamp-wrong-message", tokens=("wrong-message", "tsa"), managed_key=True)
        case("managed-key-timestamp-none-verified", tokens=("wrong-message",), managed_key=True)
        case("managed-key-no-timestamp", tokens=(), managed_key=True)

        def contradiction(root):
            # The CA's validity window ends before it starts.
            root["certificateAuthorities"][0]["validFor"] = {"start": "2026-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}

        case("trusted-root-contradicts-itself", root_changes=contradiction)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
