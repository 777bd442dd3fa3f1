"""Offline verification of an audit bundle: `python -m audit.verify BUNDLE --key VKEY`.

No Django, no database: standard library and `cryptography`, through audit.canonical,
audit.merkle and audit.note only, so an auditor can run it on a copy of the bundle.

A bundle is a directory or a .zip holding, at its root or inside one top-level folder:

    checkpoint.txt  a C2SP signed note whose text is a tlog checkpoint (origin, size N, root)
    events.jsonl    N lines {"seq": s, "canonical": <event's canonical JSON text>,
                    "hash": <hex SHA-256 of canonical's UTF-8 bytes>}, in order from seq 1

Checked in this order, stopping at the first problem: the checkpoint's signature by the given
key; the checkpoint's format; for every event, in one streaming pass (memory stays flat
however many there are): its seq follows the one before, its hash is the SHA-256 of its
canonical text, and that text is a JSON object whose "seq" is its seq and whose "prev_hash" is
the hash of the event before (GENESIS_HASH for the first); then the number of events against
the checkpoint's size, and the RFC 6962 Merkle root over leaf_hash(canonical) against the
checkpoint's root.

Exit status: 0 and one `OK: …` line; 1 and one `FAIL: …` line naming the first problem;
2 and a message for usage errors (missing bundle or file, unreadable key).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from audit import merkle, note
from audit.canonical import GENESIS_HASH, event_hash

EVENTS = "events.jsonl"
CHECKPOINT = "checkpoint.txt"
MAX_CHECKPOINT_BYTES = 64 * 1024  # a checkpoint is a few lines; refuse to slurp anything big

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class VerifyError(Exception):
    """The bundle fails verification; str() is the one `FAIL: …` line naming the problem."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"FAIL: {problem}")
        self.problem = problem


class UsageError(Exception):
    """The verifier cannot run: no such bundle or file, or an unreadable key (exit status 2)."""


def verify_bundle(path: str | Path, vkey: str) -> str:
    """The `OK: …` line if the bundle at `path` verifies against the verifier key string
    `vkey`; raises VerifyError naming the first problem, UsageError if it cannot check."""
    try:
        name, key_id, _ = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise UsageError(f"unreadable key: {exc}") from None
    with open_bundle(Path(path)) as bundle:
        origin, size, root = _check_checkpoint(bundle.read_checkpoint(), vkey)
        try:
            with bundle.open_events() as events:
                count, computed = _check_events(events)
        except zipfile.BadZipFile as exc:
            raise VerifyError(f"{EVENTS}: the zip archive is damaged ({exc})") from None
    if count != size:
        raise VerifyError(f"{count} events but the checkpoint covers {size}")
    if computed != root:
        raise VerifyError(
            f"Merkle root {computed.hex()} of the {count} events does not match the "
            f"checkpoint's {root.hex()}"
        )
    return (
        f"OK: {count} events, chain intact, Merkle root {root.hex()[:16]}… matches checkpoint "
        f"{origin} size {size} signed by {name}+{key_id.hex()}"
    )


# ---------------------------------------------------------------------------- checkpoint


def _check_checkpoint(raw: bytes, vkey: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of the signed checkpoint, or VerifyError."""
    try:
        signed = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise VerifyError("checkpoint: checkpoint.txt is not UTF-8 text") from None
    try:
        text = note.open_note(signed, vkey)
    except note.NoteError as exc:
        raise VerifyError(f"checkpoint: {exc}") from None
    try:
        return note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise VerifyError(str(exc)) from None


# -------------------------------------------------------------------------------- events


def _check_events(lines: IO[bytes]) -> tuple[int, bytes]:
    """(number of events, Merkle root over them), streaming; VerifyError at the first bad
    event."""
    builder = merkle.TreeBuilder()
    prev_hash = GENESIS_HASH
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
    return builder.size, builder.root()


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
    if not _is_int(seq) or seq < 1:
        raise VerifyError(f"{where}: seq {seq!r} is not a positive integer")
    if not isinstance(canonical, str):
        raise VerifyError(f"{where}: canonical is not a string")
    if not isinstance(claimed, str) or not _HEX_HASH.fullmatch(claimed):
        raise VerifyError(f"{where}: hash is not 64 lowercase hex digits")
    return seq, canonical, claimed


def _check_event(seq: int, canonical: str, claimed: str, prev_hash: str) -> None:
    """Hash, then the canonical text's own seq and its link to the event before."""
    try:
        computed = event_hash(canonical)
    except UnicodeEncodeError:
        raise VerifyError(f"event #{seq}: canonical text is not valid Unicode") from None
    if computed != claimed:
        raise VerifyError(f"event #{seq}: hash does not match its canonical text")
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
    if event.get("prev_hash") != prev_hash:
        before = "the genesis hash" if seq == 1 else f"the hash of event #{seq - 1}"
        raise VerifyError(f"event #{seq}: prev_hash does not match {before}: the chain is broken")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier; prints one line and returns 0 (OK), 1 (FAIL) or 2 (usage error)."""
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify",
        description="Verify an audit bundle offline: signed checkpoint, hash chain, Merkle root.",
    )
    parser.add_argument("bundle", help="bundle directory or .zip file")
    parser.add_argument(
        "--key", required=True, help="verifier key (name+id+key), or a file holding it"
    )
    args = parser.parse_args(argv)  # exits with status 2 on bad usage
    try:
        line = verify_bundle(args.bundle, read_key(args.key))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VerifyError as exc:
        print(exc)
        return 1
    except (OSError, zipfile.BadZipFile) as exc:
        print(f"error: cannot read the bundle: {exc}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
