"""Offline verification: `python -m audit.verify BUNDLE|PROOF.json --key VKEY [--decision ID]`.

No Django, no database: standard library and `cryptography`, through audit.canonical,
audit.merkle and audit.note only, so an auditor can run it on a copy of what the server gave.
The mode follows from the file: a JSON file with "checkpoint" and "events" is a decision
proof; anything else is a bundle.

Bundles. A directory or a .zip holding, at its root or inside one top-level folder:

    checkpoint.txt  a C2SP signed note whose text is a tlog checkpoint (origin, size N, root)
    events.jsonl    N lines {"seq": s, "canonical": <event's canonical JSON text>,
                    "hash": <the event's hash>}, in order from seq 1: for events of format 1
                    (no "v" key) the hex SHA-256 of canonical's UTF-8 bytes, for format 2
                    ("v":2) its RFC 6962 leaf hash, SHA-256(0x00 ‖ canonical)

Checked in this order, stopping at the first problem: the checkpoint's signature by the given
key; the checkpoint's format; for every event, in one streaming pass (memory stays flat
however many there are): its seq follows the one before, its hash is the SHA-256 of its
canonical text, and that text is a JSON object whose "seq" is its seq and whose "prev_hash" is
the hash of the event before (GENESIS_HASH for the first); then the number of events against
the checkpoint's size, and the RFC 6962 Merkle root over leaf_hash(canonical) against the
checkpoint's root.

Decision proofs. The body of GET /api/v1/decisions/{id}/proof/, saved as a file:

    {"checkpoint": {"size": N, "root": <hex>, "note": <the signed note>},
     "events": [{"seq", "canonical", "leaf_hash", "leaf_index", "proof": [<hex>…] | null}],
     "key": <verifier key>,     optional: the key the file says it is checked against
     "decision": <id>}          optional: as --decision

A receipt (a person's copy of their record) has the same form, with "key" and "decision", and
may withhold an event's text: `"canonical": null` gives the event by its leaf hash only (so
that it proves the event is in the log without showing what it says).

Checked, stopping at the first problem: no other top-level keys; "key", when present, is the
key given; the note's signature by the given key; that the note's size and root are
checkpoint.size and checkpoint.root; then for each event, in increasing seq: leaf_index is
seq − 1; unless withheld, leaf_hash is the RFC 6962 leaf hash of canonical's UTF-8 bytes,
canonical is a JSON object whose "seq" is seq and, with --decision ID (or "decision"), whose
object_type is "decision" and object_id ID; an event within the checkpoint's size must come
with an inclusion proof that leads from its leaf to the signed root; an event beyond it must
come with `proof: null` (logged after the checkpoint, proven by a later one). Proofs show each
event is in the signed log; they cannot show the decision has no other events.

Exit status: 0 and one `OK: …` line (for a proof, "N of M events proven …, K newer than the
checkpoint", and how many were given by leaf hash only; at least one event must be proven);
1 and one `FAIL: …` line naming the first problem; 2 and a message for usage errors (missing
bundle or file, unreadable key).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from audit import merkle, note
from audit.canonical import GENESIS_HASH, event_hash, is_v2, leaf_hash_hex

EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.txt"
MAX_CHECKPOINT_BYTES = 64 * 1024  # a checkpoint is a few lines; refuse to slurp anything big
MAX_PROOF_BYTES = 64 * 1024 * 1024  # one decision's events and proofs: far less than this

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class VerifyError(Exception):
    """The bundle fails verification; str() is the one `FAIL: …` line naming the problem."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"FAIL: {problem}")
        self.problem = problem


class UsageError(Exception):
    """The verifier cannot run: no such bundle or file, or an unreadable key (exit status 2)."""


def verify_bundle(path: str | Path, vkey: str, *, trusted: Sequence[TrustedCheckpoint] = ()) -> str:
    """The `OK: …` line if the bundle at `path` verifies against the verifier key string
    `vkey` (and extends every `trusted` checkpoint); raises VerifyError naming the first
    problem, UsageError if it cannot check."""
    try:
        name, key_id, _ = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise UsageError(f"unreadable key: {exc}") from None
    with open_bundle(Path(path)) as bundle:
        origin, size, root = _check_checkpoint(bundle.read_checkpoint(), vkey)
        try:
            with bundle.open_events() as events:
                count, computed, roots = _check_events(events, {t.size for t in trusted})
        except zipfile.BadZipFile as exc:
            raise VerifyError(f"{EVENTS}: the zip archive is damaged ({exc})") from None
    if count != size:
        raise VerifyError(f"{count} events but the checkpoint covers {size}")
    if computed != root:
        raise VerifyError(
            f"Merkle root {computed.hex()} of the {count} events does not match the "
            f"checkpoint's {root.hex()}"
        )
    _check_trusted(trusted, origin, count, roots)
    kept = f"; extends {len(trusted)} trusted checkpoint(s)" if trusted else ""
    return (
        f"OK: {count} events, chain intact, Merkle root {root.hex()[:16]}… matches checkpoint "
        f"{origin} size {size} signed by {name}+{key_id.hex()}{kept}"
    )


# ---------------------------------------------------------------------- trusted checkpoints


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A signed checkpoint kept outside the server (by an auditor, a witness, the mirror)."""

    label: str
    origin: str
    size: int
    root: bytes


def read_trusted(path: str | Path, vkey: str) -> list[TrustedCheckpoint]:
    """The checkpoints at `path`, each signed by `vkey`: a signed note file, a directory of
    them (the checkpoint mirror, AUDIT_CHECKPOINT_MIRROR), or a JSON Lines file of
    {"size", "note"}. UsageError if there is nothing to read; VerifyError naming the file if a
    signature does not check out."""
    path = Path(path)
    if path.is_dir():
        notes = [
            (p.name, p.read_text(encoding="utf-8")) for p in sorted(path.iterdir()) if p.is_file()
        ]
    elif path.is_file() and path.suffix == ".jsonl":
        notes = [
            (f"{path.name}:{n}", json.loads(line)["note"])
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if line.strip()
        ]
    elif path.is_file():
        notes = [(path.name, path.read_text(encoding="utf-8"))]
    else:
        raise UsageError(f"{path}: no such checkpoint file or directory")
    if not notes:
        raise UsageError(f"{path}: no checkpoint in it")
    found = []
    for label, signed in notes:
        try:
            origin, size, root = note.parse_checkpoint(note.open_note(signed, vkey))
        except note.NoteError as exc:
            raise VerifyError(f"trusted checkpoint {label}: {exc}") from None
        found.append(TrustedCheckpoint(label, origin, size, root))
    return found


def _check_trusted(
    trusted: Sequence[TrustedCheckpoint], origin: str, count: int, roots: dict[int, bytes]
) -> None:
    for t in trusted:
        if t.origin != origin:
            raise VerifyError(f"trusted checkpoint {t.label} is of log {t.origin}, not {origin}")
        if t.size > count:
            raise VerifyError(
                f"trusted checkpoint {t.label} covers {t.size} events, but this log has only "
                f"{count}: it was rolled back (or this copy is older than what you trust)"
            )
        if roots[t.size] != t.root:
            raise VerifyError(
                f"not consistent with trusted checkpoint {t.label}: the first {t.size} events "
                f"give the root {roots[t.size].hex()[:16]}…, not {t.root.hex()[:16]}…"
            )


# ---------------------------------------------------------------------------- checkpoint


def _check_checkpoint(raw: bytes, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of the signed checkpoint, or VerifyError."""
    try:
        signed = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VerifyError("checkpoint: checkpoint.txt is not UTF-8 text") from None
    return _open_checkpoint(signed, vkey)


def _open_checkpoint(signed: str, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of a signed checkpoint note, or VerifyError."""
    try:
        text = note.open_note(signed, vkey)
    except note.NoteError as exc:
        raise VerifyError(f"checkpoint: {exc}") from None
    try:
        return note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise VerifyError(str(exc)) from None


# -------------------------------------------------------------------------------- events


def _check_events(lines: IO[bytes], at: set[int] = frozenset()) -> tuple[int, bytes, dict]:
    """(number of events, Merkle root over them, {size: root} for the sizes `at`), streaming;
    VerifyError at the first bad event."""
    builder = merkle.TreeBuilder()
    prev_hash = GENESIS_HASH
    roots = {0: merkle.EMPTY_ROOT} if 0 in at else {}
    for number, raw in enumerate(lines, 1):
        seq, canonical, claimed = _parse_line(raw, number)
        expected = builder.size + 1
        if seq > expected:
            raise VerifyError(f"event #{expected} is missing: line {number} holds event #{seq}")
        if seq < expected:
            raise VerifyError(
                f"event #{seq} is out of order: line {number} holds it after event #{expected - 1}"
            )
        _check_event(seq, canonical, claimed, prev_hash)
        builder.append(merkle.leaf_hash(canonical.encode("utf-8")))
        prev_hash = claimed
        if builder.size in at:
            roots[builder.size] = builder.root()
    return builder.size, builder.root(), roots


def _parse_line(raw: bytes, number: int) -> tuple[int, str, str]:
    """(seq, canonical, hash) of one line of events.jsonl, or VerifyError."""
    where = f"events.jsonl line {number}"
    try:
        # Decoded first: json.loads would also take UTF-16 and UTF-32 bytes.
        record = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise VerifyError(f"{where}: not UTF-8 text") from None
    except ValueError as exc:
        raise VerifyError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(record, dict):
        raise VerifyError(f"{where}: not a JSON object")
    if set(record) != {"seq", "canonical", "hash"}:
        raise VerifyError(f'{where}: expected the keys "seq", "canonical", "hash"')
    seq, canonical, claimed = record["seq"], record["canonical"], record["hash"]
    _check_seq_and_text(where, seq, canonical)
    _check_hex(where, "hash", claimed)
    return seq, canonical, claimed


def _check_seq_and_text(where: str, seq: Any, canonical: Any) -> None:
    if not _is_int(seq) or seq < 1:
        raise VerifyError(f"{where}: seq {seq!r} is not a positive integer")
    if not isinstance(canonical, str):
        raise VerifyError(f"{where}: canonical is not a string")


def _check_hex(where: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise VerifyError(f"{where}: {name} is not 64 lowercase hex digits")


def _check_event(seq: int, canonical: str, claimed: str, prev_hash: str) -> None:
    """Hash, then the canonical text's own seq and its link to the event before."""
    try:
        # A format-2 event's hash is its Merkle leaf; a format-1 event's, SHA-256 of its text.
        computed = leaf_hash_hex(canonical) if is_v2(canonical) else event_hash(canonical)
    except UnicodeEncodeError:
        raise VerifyError(f"event #{seq}: canonical text is not valid Unicode") from None
    if computed != claimed:
        raise VerifyError(f"event #{seq}: hash does not match its canonical text")
    event = _canonical_event(seq, canonical)
    if event.get("prev_hash") != prev_hash:
        before = "the genesis hash" if seq == 1 else f"the hash of event #{seq - 1}"
        raise VerifyError(f"event #{seq}: prev_hash does not match {before}: the chain is broken")


def _canonical_event(seq: int, canonical: str) -> dict[str, Any]:
    """The event's canonical text as a JSON object that says it is event `seq`."""
    try:
        event = json.loads(canonical, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise VerifyError(f"event #{seq}: canonical text is not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise VerifyError(f"event #{seq}: canonical text is not a JSON object")
    if not _is_int(event.get("seq")) or event["seq"] != seq:
        raise VerifyError(
            f"event #{seq}: its canonical text says seq {event.get('seq')!r}, not {seq}"
        )
    return event


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let the text say two things; JSON parsers disagree on which wins.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"repeated key {repeated!r}")
    return result


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -------------------------------------------------------------------------------- proofs

PROOF_EVENT_KEYS = {"seq", "canonical", "leaf_hash", "leaf_index", "proof"}
PROOF_KEYS = {"checkpoint", "events"}
# "staged": how many of the object's events were recorded but not sealed yet (not proven).
PROOF_OPTIONAL_KEYS = {"key", "decision", "staged"}


def verify_proof(body: Any, vkey: str, *, decision: str | None = None) -> str:
    """The `OK: …` line if the decision proof `body` (parsed JSON) checks out against the
    verifier key string `vkey`; raises VerifyError naming the first problem, UsageError if
    the key is unreadable. `decision`: every event must be filed under that decision."""
    name, key_id = _key_label(vkey)
    if not isinstance(body, dict) or not set(body) >= PROOF_KEYS:
        raise VerifyError('proof: expected an object with "checkpoint" and "events"')
    decision = _check_proof_claims(body, vkey, decision)
    origin, size, root = _check_proof_checkpoint(body["checkpoint"], vkey)
    events = body["events"]
    if not isinstance(events, list) or not events:
        raise VerifyError("proof: events is not a non-empty list")
    proven, withheld, last = 0, 0, 0
    for number, record in enumerate(events, 1):
        seq, in_tree = _check_proof_event(record, number, size, root, decision)
        if seq <= last:
            raise VerifyError(f"event #{seq} is out of order: it comes after event #{last}")
        proven, last = proven + in_tree, seq
        withheld += record["canonical"] is None
    newer = len(events) - proven
    if not proven:
        raise VerifyError(
            f"none of the {newer} events is covered by the checkpoint of size {size} yet: "
            "nothing is proven; fetch the proof again after the next checkpoint"
        )
    hashes_only = f"; {withheld} given by leaf hash only (text withheld)" if withheld else ""
    return (
        f"OK: {proven} of {len(events)} events proven in checkpoint {origin} size {size} "
        f"signed by {name}+{key_id}; {newer} newer than the checkpoint (not yet covered)"
        f"{hashes_only}"
    )


def _check_proof_claims(body: dict, vkey: str, decision: str | None) -> str | None:
    """What the file says of itself: only known keys; the key it names is the key given; the
    decision it names agrees with --decision. Returns the decision to check events against."""
    unknown = sorted(set(body) - PROOF_KEYS - PROOF_OPTIONAL_KEYS, key=str)
    if unknown:
        raise VerifyError(f"proof: unknown top-level key {unknown[0]!r}")
    if "key" in body and body["key"] != vkey:
        raise VerifyError("proof: the file names another key than the one given with --key")
    if "decision" not in body:
        return decision
    named = body["decision"]
    if not isinstance(named, str) or (decision is not None and named != decision):
        raise VerifyError(f"proof: the file is about decision {named!r}, not {decision!r}")
    return named


def _key_label(vkey: str) -> tuple[str, str]:
    try:
        name, key_id, _ = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise UsageError(f"unreadable key: {exc}") from None
    return name, key_id.hex()


def _check_proof_checkpoint(value: Any, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of the proof's checkpoint, whose note must be signed by `vkey`
    and say the size and root given beside it."""
    if value is None:
        raise VerifyError("checkpoint: none was signed when the proof was fetched")
    if not isinstance(value, dict) or not {"size", "root", "note"} <= set(value):
        raise VerifyError('checkpoint: expected an object with "size", "root" and "note"')
    if not isinstance(value["note"], str):
        raise VerifyError("checkpoint: note is not a string")
    origin, size, root = _open_checkpoint(value["note"], vkey)
    if (value["size"], value["root"]) != (size, root.hex()):
        raise VerifyError(
            f"checkpoint: the signed note says size {size}, root {root.hex()}, not size "
            f"{value['size']!r}, root {value['root']!r}"
        )
    return origin, size, root


def _check_proof_event(
    record: Any, number: int, size: int, root: bytes, decision: str | None
) -> tuple[int, bool]:
    """(seq, whether it is proven in the signed tree; False: newer than the checkpoint)."""
    seq, canonical, leaf_hex, index, proof = _parse_proof_event(record, number)
    if index != seq - 1:
        raise VerifyError(f"event #{seq}: leaf_index {index} is not seq − 1")
    if canonical is None:  # withheld: the leaf hash alone is proven
        leaf = bytes.fromhex(leaf_hex)
    else:
        leaf = _check_canonical_leaf(seq, canonical, leaf_hex, decision)
    if proof is None:
        if seq <= size:
            raise VerifyError(f"event #{seq}: no inclusion proof, yet checkpoint {size} covers it")
        return seq, False
    if seq > size:
        raise VerifyError(f"event #{seq}: a proof, yet it is beyond the checkpoint's size {size}")
    if not merkle.verify_inclusion(leaf, index, size, proof, root):
        raise VerifyError(f"event #{seq}: its inclusion proof does not lead to the signed root")
    return seq, True


def _check_canonical_leaf(seq: int, canonical: str, leaf_hex: str, decision: str | None) -> bytes:
    try:
        leaf = merkle.leaf_hash(canonical.encode("utf-8"))
    except UnicodeEncodeError:
        raise VerifyError(f"event #{seq}: canonical text is not valid Unicode") from None
    if leaf.hex() != leaf_hex:
        raise VerifyError(f"event #{seq}: leaf_hash does not match its canonical text")
    event = _canonical_event(seq, canonical)
    filed = (event.get("object_type"), event.get("object_id"))
    if decision is not None and filed != ("decision", decision):
        raise VerifyError(f"event #{seq}: it is filed under {filed[0]}:{filed[1]}, not decision "
                          f"{decision}")  # fmt: skip
    return leaf


def _parse_proof_event(record: Any, number: int) -> tuple[int, str | None, str, int, list | None]:
    """(seq, canonical, leaf_hash, leaf_index, proof as bytes or None) of one proof event."""
    where = f"events[{number - 1}]"
    if not isinstance(record, dict) or not set(record) >= PROOF_EVENT_KEYS:
        raise VerifyError(f"{where}: expected the keys {', '.join(sorted(PROOF_EVENT_KEYS))}")
    seq, canonical, leaf_hex = record["seq"], record["canonical"], record["leaf_hash"]
    index, proof = record["leaf_index"], record["proof"]
    _check_seq_and_text(where, seq, "" if canonical is None else canonical)
    _check_hex(where, "leaf_hash", leaf_hex)
    if not _is_int(index):
        raise VerifyError(f"{where}: leaf_index {index!r} is not an integer")
    if proof is not None and (
        not isinstance(proof, list)
        or not all(isinstance(h, str) and _HEX_HASH.fullmatch(h) for h in proof)
    ):
        raise VerifyError(f"{where}: proof is neither null nor a list of 64-hex-digit hashes")
    hashes = None if proof is None else [bytes.fromhex(h) for h in proof]
    return seq, canonical, leaf_hex, index, hashes


def read_proof(path: Path) -> Any:
    """The parsed decision proof in the file at `path`, or None if it is no proof (a bundle
    directory or zip, or a file that is not JSON with "checkpoint" and "events")."""
    if not path.is_file() or zipfile.is_zipfile(path):
        return None
    with path.open("rb") as f:
        raw = f.read(MAX_PROOF_BYTES + 1)
    if len(raw) > MAX_PROOF_BYTES:
        return None
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        if path.suffix == ".json":
            raise VerifyError(f"proof: {path.name} is not JSON ({exc})") from None
        return None
    if isinstance(body, dict) and {"checkpoint", "events"} <= set(body):
        return body
    if path.suffix == ".json":
        raise UsageError(f'{path}: JSON without "checkpoint" and "events" is not a decision proof')
    return None


# -------------------------------------------------------------------------------- bundle


class Bundle:
    """The two files of a bundle, wherever in its directory or zip they are."""

    def read_checkpoint(self) -> bytes:
        with self._open(CHECKPOINT) as stream:
            data = stream.read(MAX_CHECKPOINT_BYTES + 1)
        if len(data) > MAX_CHECKPOINT_BYTES:
            raise VerifyError(f"checkpoint: {CHECKPOINT} is over {MAX_CHECKPOINT_BYTES} bytes")
        return data

    def open_events(self) -> IO[bytes]:
        return self._open(EVENTS)

    def _open(self, name: str) -> IO[bytes]:
        raise NotImplementedError


class DirectoryBundle(Bundle):
    def __init__(self, base: Path) -> None:
        self.base = base

    def _open(self, name: str) -> IO[bytes]:
        return (self.base / name).open("rb")


class ZipBundle(Bundle):
    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        self.archive, self.prefix = archive, prefix

    def _open(self, name: str) -> IO[bytes]:
        return self.archive.open(self.prefix + name)


@contextmanager
def open_bundle(path: Path) -> Iterator[Bundle]:
    """The bundle at `path`: a directory or a .zip, its files at the root or in one top-level
    folder. UsageError if there is no such bundle."""
    if path.is_dir():
        yield DirectoryBundle(_locate_in_directory(path))
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield ZipBundle(archive, _locate_in_zip(archive, path))
    elif path.exists():
        raise UsageError(f"{path} is neither a directory nor a .zip file")
    else:
        raise UsageError(f"{path}: no such bundle")


def _locate_in_directory(path: Path) -> Path:
    if _has_both(lambda name: (path / name).is_file()):
        return path
    folders = [
        sub
        for sub in sorted(path.iterdir())
        if sub.is_dir() and _has_both(lambda name, sub=sub: (sub / name).is_file())
    ]
    return _only(folders, path)


def _locate_in_zip(archive: zipfile.ZipFile, path: Path) -> str:
    names = set(archive.namelist())
    if _has_both(names.__contains__):
        return ""
    tops = sorted({name.split("/", 1)[0] + "/" for name in names if "/" in name})
    return _only([top for top in tops if _has_both(lambda n, top=top: top + n in names)], path)


def _has_both(exists: Callable[[str], bool]) -> bool:
    return exists(EVENTS) and exists(CHECKPOINT)


def _only(candidates: list[T], path: Path) -> T:
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"{path}: no {EVENTS} and {CHECKPOINT} at its root or in a top folder")
    listed = ", ".join(str(c).rstrip("/").rsplit("/", 1)[-1] for c in candidates)
    raise UsageError(f"{path}: several folders hold a bundle ({listed}); give one of them")


# ----------------------------------------------------------------------------------- CLI


def read_key(value: str) -> str:
    """The verifier key string: `value` itself, or the stripped contents of the file it names."""
    candidate = Path(value)
    try:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the key file {value}: {exc}") from None
    return value.strip()


def verify_path(
    path: str | Path,
    vkey: str,
    *,
    decision: str | None = None,
    trusted: Sequence[TrustedCheckpoint] = (),
) -> str:
    """Verify the decision proof or the bundle at `path` (see the module docstring)."""
    body = read_proof(Path(path))
    if body is not None:
        if trusted:
            raise UsageError(
                "--trusted applies to a bundle (the whole log), not to a decision proof; "
                "a witness (python -m audit.witness) checks a live log against what it trusts"
            )
        return verify_proof(body, vkey, decision=decision)
    if decision is not None:
        raise UsageError("--decision applies to a decision proof (.json), not to a bundle")
    return verify_bundle(path, vkey, trusted=trusted)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; prints one line and returns 0 (OK), 1 (FAIL) or 2 (usage error)."""
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify",
        description="Verify offline, against a public key: an audit bundle (signed checkpoint, "
        "hash chain, Merkle root) or a decision proof (signed checkpoint, inclusion proofs).",
    )
    parser.add_argument(
        "path", metavar="BUNDLE|PROOF", help="bundle directory or .zip, or a proof .json file"
    )
    parser.add_argument(
        "--key", required=True, help="verifier key (name+id+key), or a file holding it"
    )
    parser.add_argument(
        "--decision", metavar="ID", help="proofs: every event must belong to this decision"
    )
    parser.add_argument(
        "--trusted",
        metavar="CHECKPOINT",
        action="append",
        default=[],
        help="bundles: a signed checkpoint you kept (a note file, a directory of them, or a "
        ".jsonl mirror) that the log must still extend; repeatable",
    )
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    try:
        vkey = read_key(args.key)
        trusted = [t for path in args.trusted for t in read_trusted(path, vkey)]
        line = verify_path(args.path, vkey, decision=args.decision, trusted=trusted)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VerifyError as exc:
        print(exc)
        return 1
    except (OSError, zipfile.BadZipFile) as exc:
        print(f"error: cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
