"""The verifiable audit log, checked from outside the binary.

Everything a relying party needs is re-implemented here in plain Python,
from the specifications and nothing else:

- RFC 9162 §2.1: the Merkle tree hash (MTH) of all leaves, the audit path
  (§2.1.3.1) and consistency proof (§2.1.4.1) it defines, and the two
  verification algorithms (§2.1.3.2 inclusion, §2.1.4.2 consistency — the
  bit-shifting ones with fn/sn/fr/sr);
- C2SP signed-note / tlog-checkpoint: the note's text, its signature line
  and the verifier key `<origin>+<key id>+<base64(0x01 ‖ public key)>`;
- RFC 8032 §6: Ed25519 verification (the pure-Python reference, so the test
  depends on no crypto package).

The real server then answers, and what it signs and proves must check with
those independent implementations; the binary's own offline verifiers
(`audit verify --checkpoint/--bundle/--witness/--database-url`) must agree,
and must refuse forged checkpoints, altered proofs and bundles, wrong keys,
and a database rewritten or truncated behind the server's back.
"""

import base64
import hashlib
import json
import os
import re
import sqlite3
import subprocess
from datetime import datetime

import pytest
import requests

from conftest import modelops_bin, start_server, stop_server

# ---------------------------------------------------------------------------
# RFC 9162 §2.1: Merkle tree hashes, proofs, and their verification.
# ---------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves):
    """MTH(D[n]) of §2.1.1, over the leaves' hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = split_point(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def rfc_path(m, leaves):
    """PATH(m, D[n]) of §2.1.3.1: the audit path of leaf m."""
    n = len(leaves)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return rfc_path(m, leaves[:k]) + [mth(leaves[k:])]
    return rfc_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def rfc_proof(m, leaves):
    """PROOF(m, D[n]) of §2.1.4.1: the consistency proof from size m."""

    def subproof(m, leaves, b):
        n = len(leaves)
        if m == n:
            return [] if b else [mth(leaves)]
        k = split_point(n)
        if m <= k:
            return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
        return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]

    return subproof(m, leaves, True)


def verify_inclusion(leaf_index, tree_size, leaf, inclusion_path, root) -> bool:
    """§2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in inclusion_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, consistency_path) -> bool:
    """§2.1.4.2, step by step (first == second: the empty proof of equal roots)."""
    if first == second:
        return not consistency_path and first_hash == second_hash
    if first == 0 or first > second:
        return False
    if not consistency_path:
        return False
    path = list(consistency_path)
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_hash and sr == second_hash


# ---------------------------------------------------------------------------
# RFC 8032 §6: Ed25519 (reference code, verification and key derivation).
# ---------------------------------------------------------------------------

ED_P = 2**255 - 19
ED_Q = 2**252 + 27742317777372353535851937790883648493


def _inv(x):
    return pow(x, ED_P - 2, ED_P)


ED_D = -121665 * _inv(121666) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def _point_add(P, Q):
    A, B = (P[1] - P[0]) * (Q[1] - Q[0]) % ED_P, (P[1] + P[0]) * (Q[1] + Q[0]) % ED_P
    C, D = 2 * P[3] * Q[3] * ED_D % ED_P, 2 * P[2] * Q[2] % ED_P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F, G * H, F * G, E * H)


def _point_mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = _point_add(Q, P)
        P = _point_add(P, P)
        s >>= 1
    return Q


def _point_equal(P, Q):
    if (P[0] * Q[2] - Q[0] * P[2]) % ED_P != 0:
        return False
    return (P[1] * Q[2] - Q[1] * P[2]) % ED_P == 0


def _recover_x(y, sign):
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * _inv(ED_D * y * y + 1)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return x


_GY = 4 * _inv(5) % ED_P
_GX = _recover_x(_GY, 0)
ED_G = (_GX, _GY, 1, _GX * _GY % ED_P)


def _point_compress(P):
    zinv = _inv(P[2])
    x, y = P[0] * zinv % ED_P, P[1] * zinv % ED_P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _point_decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % ED_P)


def ed25519_public_key(secret: bytes) -> bytes:
    h = hashlib.sha512(secret).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return _point_compress(_point_mul(a, ED_G))


def ed25519_verify(public: bytes, msg: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    A = _point_decompress(public)
    if A is None:
        return False
    Rs = signature[:32]
    R = _point_decompress(Rs)
    if R is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= ED_Q:
        return False
    h = int.from_bytes(hashlib.sha512(Rs + public + msg).digest(), "little") % ED_Q
    return _point_equal(_point_mul(s, ED_G), _point_add(R, _point_mul(h, A)))


def test_the_reference_implementations_check_themselves():
    """RFC 8032 §7.1 TEST 1 and a hand-built RFC 9162 tree, so the checks
    below stand on verifiers that are known to accept and to refuse."""
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert ed25519_public_key(secret) == public
    assert ed25519_verify(public, b"", sig)
    assert not ed25519_verify(public, b"x", sig)
    assert not ed25519_verify(public, b"", sig[:-1] + bytes([sig[-1] ^ 1]))

    leaves = [leaf_hash(bytes([i])) for i in range(13)]
    # MTH of three leaves by hand: ((l0 l1) l2).
    assert mth(leaves[:3]) == node_hash(node_hash(leaves[0], leaves[1]), leaves[2])
    for n in range(1, 14):
        root = mth(leaves[:n])
        for m in range(n):
            path = rfc_path(m, leaves[:n])
            assert verify_inclusion(m, n, leaves[m], path, root), (m, n)
            assert not verify_inclusion(m, n, leaves[(m + 1) % 13], path, root)
        for m in range(1, n):
            proof = rfc_proof(m, leaves[:n])
            assert verify_consistency(m, n, mth(leaves[:m]), root, proof), (m, n)
            assert not verify_consistency(m, n, mth(leaves[: m - 1]) if m > 1 else leaves[5], root, proof)


# ---------------------------------------------------------------------------
# C2SP signed notes and verifier keys.
# ---------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_id(origin: str, public: bytes) -> bytes:
    return sha256(origin.encode() + b"\n" + b"\x01" + public)[:4]


def parse_key(text: str):
    """`<origin>+<8 hex>+<base64(0x01 ‖ key)>` → (origin, id, 32-byte key)."""
    origin, hex_id, rest = text.strip().split("+", 2)
    raw = base64.b64decode(rest, validate=True)
    assert len(raw) == 33 and raw[0] == 1, f"not an Ed25519 verifier key: {text!r}"
    public = raw[1:]
    assert re.fullmatch(r"[0-9a-f]{8}", hex_id), text
    return origin, bytes.fromhex(hex_id), public


def make_key(origin: str, public: bytes) -> str:
    body = b64(b"\x01" + public)
    return f"{origin}+{key_id(origin, public).hex()}+{body}"


def parse_note(note: str):
    """A signed note → (signed text, [(name, key id, signature)])."""
    text, sep, sigs = note.partition("\n\n")
    assert sep, f"no blank line in the note: {note!r}"
    signatures = []
    for line in sigs.splitlines():
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        assert m, f"not a signature line: {line!r}"
        raw = base64.b64decode(m.group(2), validate=True)
        signatures.append((m.group(1), raw[:4], raw[4:]))
    return (text + "\n").encode(), signatures


def note_verifies(note: str, key_text: str) -> bool:
    """The note carries a signature by `key_text` that verifies (RFC 8032)."""
    origin, kid, public = parse_key(key_text)
    try:
        text, signatures = parse_note(note)
    except (AssertionError, ValueError):
        return False
    return any(
        name == origin and sig_id == kid and ed25519_verify(public, text, sig)
        for name, sig_id, sig in signatures
    )


def parse_checkpoint(note: str):
    """The tlog-checkpoint body: (origin, size, root bytes, extension lines)."""
    text, _ = parse_note(note)
    lines = text.decode().split("\n")[:-1]
    return lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True), lines[3:]


# ---------------------------------------------------------------------------
# The server and its API.
# ---------------------------------------------------------------------------


class Log:
    """A server started with a witness folder, and helpers over its API."""

    def __init__(self, tmp_path_factory, name):
        self.data_dir = tmp_path_factory.mktemp(f"{name}-data")
        self.witness = tmp_path_factory.mktemp(f"{name}-witness")
        self.work = tmp_path_factory.mktemp(f"{name}-work")
        self.proc, self.s = start_server(
            self.data_dir, "--audit-witness", self.witness, "--audit-checkpoint-interval", "3600", env=clean_env()
        )
        self.models = 0

    def stop(self):
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None

    def get(self, path, **params):
        r = requests.get(f"{self.s.url}{path}", params=params, headers=self.s.headers(), timeout=60)
        assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text}"
        return r

    def sign(self):
        r = requests.post(f"{self.s.url}/api/v1/audit/checkpoints", headers=self.s.headers(), timeout=60)
        assert r.status_code in (200, 201), f"POST checkpoints: {r.status_code} {r.text}"
        answer = r.json()
        assert answer["witness_failures"] == [], answer
        return answer["checkpoint"]

    def key(self) -> str:
        return self.get("/api/v1/audit/key").text.strip()

    def events(self):
        events = self.get("/api/v1/audit", page_size=1000).json()["events"]
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        return events

    def add_events(self, n):
        """n registry writes: a model, then tags on it."""
        made = 0
        while made < n:
            self.models += 1
            name = f"m{self.models:03d}"
            self.s.cli("models", "create", name, "--kind", "onnx", "--owner", "ana", "--team", "risk", "--risk-tier", "low", "--description", "x")
            made += 1
            for t in range(min(2, n - made)):
                self.s.cli("tag", "set", name, f"k{t}", f"v{t}")
                made += 1

    def proof(self, seq, size):
        return self.get(f"/api/v1/audit/events/{seq}/proof", checkpoint=size).json()

    def leaves(self, size):
        """Every leaf of the checkpoint of `size`, from each event's entry."""
        out = []
        for seq in range(1, size + 1):
            p = self.proof(seq, size)
            entry = p["entry"].encode("utf-8")
            assert bytes.fromhex(p["leaf_hash"]) == leaf_hash(entry), seq
            out.append(leaf_hash(entry))
        return out

    def cli(self, *args, check=False):
        return self.s.cli(*args, check=check)


def altered_entry(entry: str) -> bytes:
    """The entry with its action renamed (a field never sealed), still canonical."""
    action = json.loads(entry)["action"]
    altered = entry.replace(f'"action":"{action}"', f'"action":"{action}.forged"', 1)
    assert altered != entry and json.loads(altered)["action"] == f"{action}.forged", entry
    return altered.encode()


def clean_env():
    """The environment without settings that would change the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}


def offline(*args):
    """The CLI with no server to talk to (a closed port), no token."""
    env = dict(clean_env(), MODELOPS_SERVER="http://127.0.0.1:9")
    proc = subprocess.run([modelops_bin(), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)
    assert "panicked" not in proc.stderr, proc.stderr
    return proc


def output(proc):
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    log = Log(tmp_path_factory, "transparency")
    log.add_events(40)
    yield log
    log.stop()


# ---------------------------------------------------------------------------
# 1. The server's tree, proofs and signatures against the independent code.
# ---------------------------------------------------------------------------


def test_proofs_and_signatures_check_with_an_independent_implementation(log):
    key = log.key()
    origin, kid, public = parse_key(key)
    assert kid == key_id(origin, public), "the key id is not SHA-256(origin ‖ \\n ‖ 0x01 ‖ key)[:4]"

    cp1 = log.sign()
    size1 = cp1["size"]
    events = log.events()
    assert size1 == len(events) >= 40

    # The note: the checkpoint's fields, signed by the key (RFC 8032).
    note_origin, note_size, note_root, extensions = parse_checkpoint(cp1["note"])
    assert (note_origin, note_size) == (origin, size1)
    assert note_root.hex() == cp1["root"]
    times = [line.removeprefix("time ") for line in extensions if line.startswith("time ")]
    assert len(times) == 1 and datetime.fromisoformat(times[0].replace("Z", "+00:00")) == datetime.fromisoformat(
        cp1["time"].replace("Z", "+00:00")
    ), (extensions, cp1["time"])
    assert note_verifies(cp1["note"], key)
    # The note the API serves by size is the same bytes.
    assert log.get(f"/api/v1/audit/checkpoints/{size1}").text == cp1["note"]
    assert log.get("/api/v1/audit/checkpoints/latest").text == cp1["note"]
    # One byte of the note changed anywhere in the signed text: refused.
    text_len = cp1["note"].index("\n\n") + 1
    for at in [0, cp1["note"].index("\n") + 1, text_len - 2]:
        flipped = cp1["note"][:at] + chr(ord(cp1["note"][at]) ^ 1) + cp1["note"][at + 1 :]
        assert not note_verifies(flipped, key), f"a note altered at {at} still verifies"

    # Every leaf from its entry; the root of all of them is the signed root.
    leaves = log.leaves(size1)
    assert mth(leaves) == note_root, "MTH of all the events' leaves is not the signed root"
    # The entry is the event served with it.
    p = log.proof(1, size1)
    entry = json.loads(p["entry"])
    assert {k: entry[k] for k in ("sequence", "actor", "action", "subject")} == {
        k: p["event"][k] for k in ("sequence", "actor", "action", "subject")
    }
    # …and the event the log lists (personal values may be shown sealed in
    # the proof, as hashed, and opened in the list: compare the others).
    for k in ("sequence", "time", "action", "hash", "prev_hash"):
        assert p["event"][k] == events[0][k], k

    # Inclusion: every event, with the special ones named — the first, the
    # middle, the last, and both sides of a power-of-two boundary.
    special = {1, size1 // 2, size1, 32, 33}
    for seq in sorted(set(range(1, size1 + 1)) | special):
        p = log.proof(seq, size1)
        assert (p["sequence"], p["tree_size"]) == (seq, size1)
        path = [bytes.fromhex(h) for h in p["hashes"]]
        assert path == rfc_path(seq - 1, leaves), f"event {seq}: the audit path is not RFC 9162's PATH"
        assert verify_inclusion(seq - 1, size1, leaf_hash(p["entry"].encode()), path, note_root), f"event {seq}"
        assert p["checkpoint"]["size"] == size1 and p["checkpoint"]["note"] == cp1["note"]

    # A tampered proof is refused (so the checks above can fail).
    p = log.proof(33, size1)
    path = [bytes.fromhex(h) for h in p["hashes"]]
    leaf = leaf_hash(p["entry"].encode())
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not verify_inclusion(32, size1, leaf, bad, note_root), f"hash {i} altered still proves"
    assert not verify_inclusion(31, size1, leaf, path, note_root), "the proof of event 33 proves event 32"
    assert not verify_inclusion(32, size1, leaf_hash(altered_entry(p["entry"])), path, note_root)
    assert not verify_inclusion(32, size1, leaf, path[:-1], note_root)
    assert not verify_inclusion(32, size1, leaf, path, mth(leaves[:-1]))

    # The log grows; a second checkpoint; consistency from the first.
    log.add_events(7)
    cp2 = log.sign()
    size2 = cp2["size"]
    assert size2 == size1 + 7
    assert note_verifies(cp2["note"], key)
    _, _, root2, _ = parse_checkpoint(cp2["note"])
    leaves2 = log.leaves(size2)
    assert leaves2[:size1] == leaves, "the events of the first checkpoint hash differently now"
    assert mth(leaves2) == root2 and root2.hex() == cp2["root"]

    c = log.get("/api/v1/audit/consistency", **{"from": size1, "to": size2}).json()
    assert (c["from"], c["to"]) == (size1, size2)
    assert c["from_checkpoint"]["note"] == cp1["note"] and c["to_checkpoint"]["note"] == cp2["note"]
    proof = [bytes.fromhex(h) for h in c["hashes"]]
    assert proof == rfc_proof(size1, leaves2), "the consistency proof is not RFC 9162's PROOF"
    assert verify_consistency(size1, size2, note_root, root2, proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bad[i][:-1] + bytes([bad[i][-1] ^ 0x80])
        assert not verify_consistency(size1, size2, note_root, root2, bad), f"hash {i} altered still proves"
    assert not verify_consistency(size1, size2, mth(leaves[:-1]), root2, proof)
    assert not verify_consistency(size1 - 1, size2, note_root, root2, proof)

    # From sizes no checkpoint signed (a power of two, one past it, odd ones):
    # the older root is the one computed here from the leaves.
    signed = {c["size"] for c in log.get("/api/v1/audit/checkpoints").json()["checkpoints"]}
    assert {size1, size2} <= signed
    for m in [1, 2, 5, 16, 17, 32, 33, size1 - 1, size1 + 1, size2 - 1]:
        c = log.get("/api/v1/audit/consistency", **{"from": m, "to": size2}).json()
        proof = [bytes.fromhex(h) for h in c["hashes"]]
        assert proof == rfc_proof(m, leaves2), f"from {m}"
        assert verify_consistency(m, size2, mth(leaves2[:m]), root2, proof), f"from {m}"
        if m not in signed:
            assert c["from_checkpoint"] is None, f"from {m}: {c['from_checkpoint']}"
    # The proof between equal sizes is empty.
    c = log.get("/api/v1/audit/consistency", **{"from": size2, "to": size2}).json()
    assert c["hashes"] == [] and verify_consistency(size2, size2, root2, root2, [])

    # The witness received both checkpoints, byte for byte.
    witnessed = {int(p.stem): p.read_text() for p in (log.witness / "checkpoints").glob("*.note")}
    assert witnessed[size1] == cp1["note"] and witnessed[size2] == cp2["note"]
    assert all(note_verifies(n, key) for n in witnessed.values())


# ---------------------------------------------------------------------------
# 2. `audit prove -o` and `audit verify --checkpoint --proof`, offline.
# ---------------------------------------------------------------------------


def test_a_saved_proof_verifies_offline_and_forgeries_do_not(log):
    key = log.key()
    cp = log.sign()
    work = log.work / "prove"
    work.mkdir()
    seq = 7
    out = log.cli("audit", "prove", seq, "-o", work / "p.json", check=True)
    assert f"event {seq}" in out.stdout, out.stdout
    proof_file, note_file = work / "p.json", work / "p.note"
    assert proof_file.is_file() and note_file.is_file()
    saved = json.loads(proof_file.read_text())
    assert saved["sequence"] == seq and saved["tree_size"] == cp["size"]
    assert note_file.read_text() == cp["note"]
    # What was saved checks with the code here too.
    root = parse_checkpoint(note_file.read_text())[2]
    assert verify_inclusion(seq - 1, saved["tree_size"], leaf_hash(saved["entry"].encode()), [bytes.fromhex(h) for h in saved["hashes"]], root)
    assert note_verifies(note_file.read_text(), key)

    key_file = work / "log.pub"
    key_file.write_text(key + "\n")
    for given in [key, key_file]:
        ok = offline("audit", "verify", "--checkpoint", note_file, "--proof", proof_file, "--key", given)
        assert ok.returncode == 0, output(ok)
        assert f"event {seq}" in ok.stdout and "proof verified" in ok.stdout, ok.stdout
    ok = offline("audit", "verify", "--checkpoint", note_file, "--key", key)
    assert ok.returncode == 0 and "checkpoint verified" in ok.stdout, output(ok)

    # A forged checkpoint: the size line changed (the signature no longer covers it).
    note = note_file.read_text()
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) + 1)
    forged = work / "forged.note"
    forged.write_text("\n".join(lines))
    assert not note_verifies(forged.read_text(), key)
    bad = offline("audit", "verify", "--checkpoint", forged, "--proof", proof_file, "--key", key)
    assert bad.returncode == 2, output(bad)
    assert "does NOT verify" in bad.stdout, bad.stdout

    # An altered proof: one hash of the audit path, or the entry.
    for name, change in [
        ("hash", lambda p: p | {"hashes": [("0" if p["hashes"][0][0] != "0" else "1") + p["hashes"][0][1:]] + p["hashes"][1:]}),
        ("entry", lambda p: p | {"entry": altered_entry(p["entry"]).decode()}),
        ("leaf", lambda p: p | {"sequence": p["sequence"] + 1}),
    ]:
        altered = change(saved)
        assert altered != saved, name
        path = work / f"altered-{name}.json"
        path.write_text(json.dumps(altered))
        bad = offline("audit", "verify", "--checkpoint", note_file, "--proof", path, "--key", key)
        assert bad.returncode == 2, f"{name}: {output(bad)}"
        assert "does NOT verify" in bad.stdout, bad.stdout

    # A proof against an older checkpoint, checked with the newer one: refused.
    log.add_events(2)
    newer = log.sign()
    newer_note = work / "newer.note"
    newer_note.write_text(newer["note"])
    bad = offline("audit", "verify", "--checkpoint", newer_note, "--proof", proof_file, "--key", key)
    assert bad.returncode == 2, output(bad)
    # A consistency proof saved from the API verifies against the older note.
    c = log.get("/api/v1/audit/consistency", **{"from": cp["size"], "to": newer["size"]}).json()
    cons = work / "consistency.json"
    cons.write_text(json.dumps(c))
    ok = offline("audit", "verify", "--checkpoint", note_file, "--proof", cons, "--key", key)
    assert ok.returncode == 0 and "extends" in ok.stdout, output(ok)
    # …and not once one of its hashes, or the newer checkpoint it carries, is forged.
    assert verify_consistency(
        cp["size"], newer["size"], root, parse_checkpoint(newer["note"])[2], [bytes.fromhex(h) for h in c["hashes"]]
    )
    forged_hash = c | {"hashes": ["00" * 32] + c["hashes"][1:]}
    lines = newer["note"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    forged_newer = c | {"to_checkpoint": c["to_checkpoint"] | {"note": "\n".join(lines)}}
    for name, altered in [("hash", forged_hash), ("to_checkpoint", forged_newer)]:
        path = work / f"consistency-{name}.json"
        path.write_text(json.dumps(altered))
        bad = offline("audit", "verify", "--checkpoint", note_file, "--proof", path, "--key", key)
        # Refused as a verdict (exit 2), whichever part was forged.
        assert bad.returncode == 2 and "proof does NOT verify" in bad.stdout, f"{name}: {output(bad)}"

    # A wrong key of the same log name, well formed (id computed here): refused.
    origin = parse_key(key)[0]
    other_public = ed25519_public_key(hashlib.sha256(b"another server").digest())
    other = make_key(origin, other_public)
    assert other != key
    bad = offline("audit", "verify", "--checkpoint", note_file, "--proof", proof_file, "--key", other)
    assert bad.returncode == 2, output(bad)
    assert "does NOT verify" in bad.stdout, bad.stdout
    assert not note_verifies(note_file.read_text(), other)
    # One base64 character of the real key changed: not accepted either.
    _, hex_id, body = key.split("+", 2)
    i = 10
    altered_key = f"{origin}+{hex_id}+{body[:i]}{'A' if body[i] != 'A' else 'B'}{body[i + 1:]}"
    bad = offline("audit", "verify", "--checkpoint", note_file, "--proof", proof_file, "--key", altered_key)
    assert bad.returncode != 0, output(bad)
    # The binary agrees with the key id computed here: a key whose id is not
    # SHA-256(origin ‖ \n ‖ 0x01 ‖ key)[:4] is malformed.
    wrong_id = f"{origin}+{'%08x' % (int(hex_id, 16) ^ 1)}+{body}"
    bad = offline("audit", "verify", "--checkpoint", note_file, "--key", wrong_id)
    assert bad.returncode != 0, output(bad)


# ---------------------------------------------------------------------------
# 3. Export bundles, verified with the server stopped.
# ---------------------------------------------------------------------------


def test_an_export_bundle_verifies_with_no_server_and_an_edit_is_named(tmp_path_factory):
    log = Log(tmp_path_factory, "bundle")
    try:
        log.add_events(9)
        log.sign()
        log.add_events(9)
        key = log.key()
        full, since = log.work / "full", log.work / "since"
        out = log.cli("audit", "export", "-o", full, check=True)
        assert "exported events 1..=" in out.stdout, out.stdout
        out = log.cli("audit", "export", "--since", 12, "-o", since, check=True)
        assert "exported events 12..=" in out.stdout, out.stdout
        events = log.events()
    finally:
        log.stop()

    # The server is gone: these run on the files and the key alone.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{log.s.url}/api/v1/audit/key", timeout=5)
    lines = (full / "events.jsonl").read_text().splitlines()
    assert len(lines) == len(events)
    notes = sorted((full / "checkpoints").glob("*.note"))
    assert len(notes) >= 2 and all(note_verifies(n.read_text(), key) for n in notes)
    for bundle, first in [(full, 1), (since, 12)]:
        ok = offline("audit", "verify", "--bundle", bundle, "--key", key)
        assert ok.returncode == 0, output(ok)
        assert f"events {first}..=" in ok.stdout and "bundle verified" in ok.stdout, ok.stdout

    # One event's action changed in events.jsonl: refused, the event named.
    for bundle, first in [(full, 1), (since, 12)]:
        path = bundle / "events.jsonl"
        original = path.read_text()
        lines = original.splitlines()
        i = 3
        event = json.loads(lines[i])
        seq = event["sequence"]
        assert seq == first + i
        event["action"] = "model.delete" if event["action"] != "model.delete" else "model.create"
        lines[i] = json.dumps(event)
        path.write_text("\n".join(lines) + "\n")
        bad = offline("audit", "verify", "--bundle", bundle, "--key", key)
        assert bad.returncode == 2, output(bad)
        assert "does NOT verify" in bad.stdout and re.search(rf"\bevent {seq}\b", bad.stdout), bad.stdout
        # And with a later line that is not even text: the earlier break is
        # still the one named (lines are checked in order, in parallel chunks).
        path.write_bytes(("\n".join(lines[:6]) + "\n").encode() + b"\xff\xfe not utf-8\n" + ("\n".join(lines[7:]) + "\n").encode())
        bad = offline("audit", "verify", "--bundle", bundle, "--key", key)
        assert bad.returncode != 0, output(bad)
        assert re.search(rf"\bevent {seq}\b", bad.stdout + bad.stderr) and "UTF-8" not in bad.stdout + bad.stderr, output(bad)
        # The last event dropped: the last checkpoint signs more.
        path.write_text("\n".join(original.splitlines()[:-1]) + "\n")
        bad = offline("audit", "verify", "--bundle", bundle, "--key", key)
        assert bad.returncode == 2, output(bad)
        path.write_text(original)

    # The wrong key: refused.
    other = make_key(parse_key(key)[0], ed25519_public_key(b"\x07" * 32))
    bad = offline("audit", "verify", "--bundle", full, "--key", other)
    assert bad.returncode == 2, output(bad)


# ---------------------------------------------------------------------------
# 4. Witnesses catch what the chain alone cannot.
# ---------------------------------------------------------------------------


def copy_db(src, dst):
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def test_witnessed_checkpoints_catch_a_database_rewritten_or_truncated(tmp_path_factory):
    log = Log(tmp_path_factory, "witness")
    try:
        log.add_events(6)
        cp_a = log.sign()
        log.add_events(6)
        cp_b = log.sign()
        log.add_events(5)
        cp_c = log.sign()
        key = log.key()
        events = log.events()
        assert len(events) == cp_c["size"]
        entries = {seq: log.proof(seq, cp_c["size"])["entry"] for seq in range(1, cp_c["size"] + 1)}
    finally:
        log.stop()

    witnessed = sorted(int(p.stem) for p in (log.witness / "checkpoints").glob("*.note"))
    assert {cp_a["size"], cp_b["size"], cp_c["size"]} <= set(witnessed), witnessed
    db = log.data_dir / "modelops.db"
    assert db.is_file()
    work = log.work

    def verify(path, *extra):
        return offline("audit", "verify", "--database-url", f"sqlite://{path}", *extra)

    witness_args = ("--witness", log.witness, "--key", key)
    ok = verify(db)
    assert ok.returncode == 0 and "audit chain intact" in ok.stdout, output(ok)
    ok = verify(db, *witness_args)
    assert ok.returncode == 0 and "witnesses agree" in ok.stdout, output(ok)

    # (a) One early event's actor changed, nothing else: the chain breaks there.
    a = work / "edited.db"
    copy_db(db, a)
    with sqlite3.connect(a) as con:
        con.execute("DROP TRIGGER audit_events_no_update")
        con.execute("UPDATE audit_events SET actor = 'mallory' WHERE sequence = 2")
    con.close()
    bad = verify(a)
    assert bad.returncode == 2 and "event 2" in bad.stdout, output(bad)
    bad = verify(a, *witness_args)
    assert bad.returncode == 2 and "event 2" in bad.stdout, output(bad)

    # (b) An early event rewritten (its action: a field stored and hashed
    # verbatim, whatever is sealed) with the chain recomputed after it —
    # every later hash and prev_hash, the head — and the stored checkpoints
    # deleted: the chain alone verifies; the witness names the first
    # checkpoint that covered the edited event.
    target = 3
    b = work / "rewritten.db"
    copy_db(db, b)
    forged_entry = altered_entry(entries[target]).decode()
    forged_action = json.loads(forged_entry)["action"]
    with sqlite3.connect(b) as con:
        for trigger in ["audit_events_no_update", "audit_head_forward_only"]:
            con.execute(f"DROP TRIGGER {trigger}")
        rows = con.execute("SELECT sequence, prev_hash, hash, action FROM audit_events ORDER BY sequence").fetchall()
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
        # The chain as stored is sha256(prev_hash ‖ entry), hex: reproduced here first.
        for seq, prev, h, _ in rows:
            assert hashlib.sha256(prev.encode() + entries[seq].encode()).hexdigest() == h, seq
        prev = rows[target - 2][2]
        for seq, _, _, _ in rows[target - 1 :]:
            entry = forged_entry if seq == target else entries[seq]
            h = hashlib.sha256(prev.encode() + entry.encode()).hexdigest()
            con.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE sequence = ?", (prev, h, seq))
            prev = h
        con.execute("UPDATE audit_events SET action = ? WHERE sequence = ?", (forged_action, target))
        con.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
    con.close()
    first_diverging = min(s for s in witnessed if s >= target)
    # The checkpoints stored in the database, checked with the key, see it…
    bad = verify(b, "--key", key)
    assert bad.returncode == 2 and f"checkpoint of {first_diverging} events" in bad.stdout, output(bad)
    # …so the rewriter deletes them too.
    with sqlite3.connect(b) as con:
        con.execute("DROP TRIGGER audit_checkpoints_no_delete")
        con.execute("DELETE FROM audit_checkpoints")
    con.close()
    ok = verify(b)
    assert ok.returncode == 0 and "audit chain intact" in ok.stdout, "the rewrite should fool the chain alone:\n" + output(ok)
    bad = verify(b, *witness_args)
    assert bad.returncode == 2, output(bad)
    assert "DISAGREE" in bad.stdout and f"checkpoint of {first_diverging} events" in bad.stdout, bad.stdout

    # (c) The newest events deleted and the head moved back: the chain alone
    # verifies; the witness says events were removed.
    keep = cp_b["size"]
    c = work / "truncated.db"
    copy_db(db, c)
    with sqlite3.connect(c) as con:
        for trigger in ["audit_events_no_delete", "audit_head_forward_only"]:
            con.execute(f"DROP TRIGGER {trigger}")
        (head_hash,) = con.execute("SELECT hash FROM audit_events WHERE sequence = ?", (keep,)).fetchone()
        con.execute("DELETE FROM audit_events WHERE sequence > ?", (keep,))
        con.execute("UPDATE audit_head SET sequence = ?, hash = ? WHERE id = 1", (keep, head_hash))
    con.close()
    ok = verify(c)
    assert ok.returncode == 0 and f"{keep} events" in ok.stdout, "truncation should fool the chain alone:\n" + output(ok)
    bad = verify(c, *witness_args)
    assert bad.returncode == 2, output(bad)
    assert "removed" in bad.stdout and f"covers {cp_c['size']} events" in bad.stdout, bad.stdout

    # The original database is untouched by all of this.
    ok = verify(db, *witness_args)
    assert ok.returncode == 0, output(ok)
