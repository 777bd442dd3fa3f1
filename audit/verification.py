"""Verifying the whole log: chain, Merkle leaves, checkpoints, signatures.

One streaming pass in sequence order. For each event: its hash over its canonical text, its
link to the event before, its time not earlier than the one before, and its Merkle leaf against
the leaf sealed for it (which names an event altered after sealing even when the chain was
rehashed around it). At each checkpoint's size: the Merkle root recomputed from the events
must be the signed one. Every checkpoint's signature is checked against the public key, and
successive checkpoints must be consistent. The first failure is reported, precisely.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from audit import keys, merkle, note
from audit.canonical import GENESIS_HASH, format_time
from audit.db import read_only_snapshot_with_writer
from audit.log import iter_events, row_text
from audit.models import AuditEvent, ChainVerification, Checkpoint, MerkleNode
from audit.tree import StoredTree, TreeError
from core import jobs


@dataclass
class Report:
    """`problem`: altered, missing, out_of_order, broken_link, checkpoint, or "" when intact."""

    ok: bool
    count: int
    last_seq: int
    last_hash: str
    first_bad_seq: int | None = None
    problem: str = ""
    message: str = ""
    checkpoints: int = 0


class Problem(Exception):
    def __init__(self, seq: int | None, kind: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.kind, self.message = seq, kind, message


_PG_ROWS = """
SELECT e.seq, to_char(e.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor,
       e.action, e.object_type, e.object_id, e.payload, e.prev_hash, e.hash, e.format,
       to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), n.hash
FROM audit_auditevent e
LEFT JOIN audit_merklenode n ON n.level = 0 AND n.index = e.seq - 1
WHERE e.seq IS NOT NULL
ORDER BY e.seq
"""


def _rows(chunk: int) -> Iterator[tuple]:
    """(seq, time text, actor, action, type, id, payload, prev_hash, hash, format,
    recorded_at text|None, sealed leaf|None), sealed events only, in seq order."""
    if connection.vendor == "postgresql":
        # A named (server-side) cursor streams the log instead of loading it.
        with connection.cursor() as cursor, cursor.connection.cursor(name="audit_verify") as rows:
            rows.itersize = chunk
            rows.execute(_PG_ROWS)
            yield from rows
        return
    sealed = dict(MerkleNode.objects.filter(level=0).values_list("index", "hash"))
    for row in iter_events(chunk_size=chunk):
        leaf = sealed.get(row[0] - 1)
        recorded = format_time(row[10]) if row[10] else None
        yield (row[0], format_time(row[1]), *row[2:10], recorded, leaf)


def verify_log(*, vkey: str | None = None, chunk: int = 10_000, job: int | None = None) -> Report:
    """Verify everything; `vkey` is the checkpoint public key (default: this server's); `job`,
    the ChainVerification whose heart beats while the pass runs."""
    # One consistent snapshot of events, nodes and checkpoints for the whole pass.
    with read_only_snapshot_with_writer() as (_, writer):
        beat = jobs.Heartbeat(writer, ChainVerification, job) if job else _no_beat
        return _verify(vkey, chunk, beat)


def _no_beat(**columns) -> None:
    return None


def _verify(vkey: str | None, chunk: int, beat) -> Report:
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    state = {"count": 0, "seq": 0, "hash": GENESIS_HASH}
    try:
        _check_checkpoint_notes(checkpoints, vkey)
        _walk(_rows(chunk), checkpoints, state, beat)
        _check_consistency(checkpoints)
    except Problem as problem:
        return Report(
            False,
            state["count"],
            state["seq"],
            state["hash"],
            problem.seq,
            problem.kind,
            problem.message,
            len(checkpoints),
        )
    summary = f"OK: {state['count']} events, chain intact"
    if checkpoints:
        latest = checkpoints[-1]
        summary += (
            f"; {len(checkpoints)} signed checkpoints verified, the latest at size "
            f"{latest.tree_size} with root {latest.root[:16]}…"
        )
    return Report(
        True,
        state["count"],
        state["seq"],
        state["hash"],
        message=summary,
        checkpoints=len(checkpoints),
    )


def _walk(rows: Iterator[tuple], checkpoints: list[Checkpoint], state: dict, beat) -> None:
    """The hot loop (a million events): the common case costs two SHA-256 and one append for
    a format-2 event (its hash is its leaf), three for format 1; anything unexpected goes to
    _check_event, which names the problem."""
    builder, pending = merkle.TreeBuilder(), list(checkpoints)
    next_size = pending[0].tree_size if pending else -1
    prev_hash, prev_time, expected, sha256 = GENESIS_HASH, "", 1, hashlib.sha256
    # Events whose leaf differs from the one stored for them: which of the two was altered
    # is told at the next signed root (see _check_root).
    suspects: list[int] = []
    try:
        for row in rows:
            seq, time, stored_prev, stored_hash, sealed = row[0], row[1], row[7], row[8], row[11]
            data = row_text(row).encode()
            leaf = sha256(b"\x00" + data).digest()
            own = leaf.hex() if row[9] == 2 else sha256(data).hexdigest()
            if (
                seq != expected
                or own != stored_hash
                or stored_prev != prev_hash
                or time < prev_time
                or (row[9] == 2 and row[10] > time)
            ):
                _check_event(row, expected, own, prev_hash, prev_time)
            if sealed is not None and bytes(sealed) != leaf:
                suspects.append(seq)
            builder.add(leaf)
            prev_hash, prev_time, expected = stored_hash, time, expected + 1
            if not expected & 0xFFFF:  # every 65,536 events
                beat()
            while expected - 1 == next_size:
                _check_root(pending.pop(0), builder.root(), suspects)
                suspects = []
                next_size = pending[0].tree_size if pending else -1
    finally:
        state.update(count=expected - 1, seq=expected - 1, hash=prev_hash)
    if pending:
        cp = pending[0]
        raise Problem(
            expected,
            "missing",
            f"the signed checkpoint of size {cp.tree_size} covers events #{expected}–"
            f"#{cp.tree_size}, which are missing from the log",
        )
    if suspects:
        seq = suspects[0]
        raise Problem(
            seq,
            "altered",
            f"event #{seq} differs from the Merkle leaf stored for it: the event or the stored "
            "leaf was changed after sealing (no signed checkpoint covers it yet to tell which)",
        )


def _check_event(row: tuple, expected: int, own: str, prev_hash: str, prev_time: str) -> None:
    seq, time, stored_prev, stored_hash = row[0], row[1], row[7], row[8]
    if seq != expected:
        gap = f"#{expected}" if seq == expected + 1 else f"#{expected}–#{seq - 1}"
        raise Problem(
            expected,
            "missing",
            f"event {gap} is missing: the log jumps from #{expected - 1} to #{seq}",
        )
    if own != stored_hash:
        raise Problem(
            seq, "altered", f"event #{seq} was altered: its stored hash does not match its contents"
        )
    if stored_prev != prev_hash:
        linked = AuditEvent.objects.filter(hash=stored_prev).values_list("seq", flat=True).first()
        if linked is not None:
            raise Problem(
                seq,
                "out_of_order",
                f"event #{seq} follows event #{linked} in the chain, not #{seq - 1}",
            )
        raise Problem(
            seq,
            "broken_link",
            f"event #{seq} does not link to event #{seq - 1}: prev_hash matches no event",
        )
    if time < prev_time:
        raise Problem(
            seq, "out_of_order", f"event #{seq}'s time {time} is earlier than event #{seq - 1}'s"
        )
    raise Problem(
        seq, "out_of_order", f"event #{seq} was recorded at {row[10]}, after it was sealed ({time})"
    )


def _check_root(checkpoint: Checkpoint, root: bytes, suspects: list[int]) -> None:
    """The events up to a checkpoint's size must give its signed root. Where some events'
    stored leaves differ from their recomputed ones, the root decides who was altered: if the
    events still give the signed root, the stored leaves were; if not, the first such event."""
    if root.hex() == checkpoint.root:
        if suspects:
            seq = suspects[0]
            raise Problem(
                seq,
                "tree_altered",
                f"the stored Merkle leaf of event #{seq} was altered: the event itself is "
                f"intact (its hash, its link and the signed root of checkpoint "
                f"{checkpoint.tree_size} agree with it)",
            )
        return
    if suspects:
        seq = suspects[0]
        raise Problem(
            seq,
            "altered",
            f"event #{seq} differs from the leaf sealed for it: it was changed after it was "
            "sealed into the Merkle tree",
        )
    raise Problem(
        checkpoint.tree_size,
        "checkpoint",
        f"the events up to #{checkpoint.tree_size} do not give the signed checkpoint's "
        f"Merkle root ({checkpoint.root[:16]}…): the log was rewritten",
    )


def _check_checkpoint_notes(checkpoints: list[Checkpoint], vkey: str | None) -> None:
    if not checkpoints:
        return
    if vkey is None:
        vkey = keys.vkey()
    for cp in checkpoints:
        try:
            _origin, size, root = note.parse_checkpoint(note.open_note(cp.note, vkey))
        except note.NoteError as exc:
            raise Problem(
                cp.tree_size,
                "checkpoint",
                f"checkpoint of size {cp.tree_size}: bad signature ({exc})",
            ) from None
        if (size, root.hex()) != (cp.tree_size, cp.root):
            raise Problem(
                cp.tree_size,
                "checkpoint",
                f"checkpoint of size {cp.tree_size}: its signed note says size {size}, "
                f"root {root.hex()[:16]}…, not what the table says",
            )


def _check_consistency(checkpoints: list[Checkpoint]) -> None:
    tree = StoredTree()
    for old, new in itertools.pairwise(checkpoints):
        try:
            proof = tree.consistency_proof(old.tree_size, new.tree_size)
        except TreeError as exc:
            raise Problem(
                new.tree_size,
                "checkpoint",
                f"cannot prove checkpoints {old.tree_size}→{new.tree_size} consistent: {exc}",
            ) from None
        if not merkle.verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root), bytes.fromhex(new.root), proof
        ):
            raise Problem(
                new.tree_size,
                "checkpoint",
                f"checkpoints of sizes {old.tree_size} and {new.tree_size} are not consistent",
            )
