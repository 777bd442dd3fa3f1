"""Verifying the whole log: chain, hashes, Merkle roots, checkpoints, signatures, and
checkpoints kept outside the database (trusted).

One pass in sequence order, in aligned blocks of BLOCK events. For each block, in tight loops:
every event's hash over its canonical text (its Merkle leaf, for format 2), every link to the
event before, times that never go back; then the block's subtree root, which must be the
node the stored tree keeps for it. At each checkpoint's size (signed or trusted) the Merkle
root recomputed from the events must be the signed one. Every checkpoint's signature is checked
against the public key, and successive checkpoints, and each trusted checkpoint and the latest
signed one, must be consistent (RFC 6962 proofs from the stored tree). The first failure is
reported, precisely, with the event (or stored node) that is actually wrong.

Reading. On SQLite, one process reads the events through the ORM and builds each canonical
text with audit.canonical. On PostgreSQL the database sends the events' plain columns (times as
UTC text) and the text is built in Python (audit.pgblocks; a test holds it byte-equal to
audit.canonical's), and, for a log of PARALLEL_MIN events or more, WORKERS (2) forked
processes do the reading and hashing: the pass exports its REPEATABLE READ, READ ONLY snapshot
(pg_export_snapshot) and each worker imports it (SET TRANSACTION SNAPSHOT) on its own
connection, so every process sees the same log, and nothing sealed or changed after the pass
began. Each worker takes CHUNK_BLOCKS aligned blocks at a time and returns, per block, its
leaves and subtree root, its first link and time, its last hash and time, and whether its seqs,
hashes, inner links and times all held. This process takes those summaries in order, checks the
links and times between them, compares the roots with the stored tree and checks the
checkpoints as above; at the first block that did not hold (or if a worker fails), it reads on
itself, block by block, which names the first problem exactly as a single pass would. A wrong
text could only give a false alarm, never hide a change, since every text must hash to what
was sealed. Without workers (a smaller log, a daemon process such as a task worker, which may
not start processes, or inside a caller's transaction) this process reads it all.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from psycopg.conninfo import make_conninfo

from audit import keys, merkle, note, pgblocks
from audit.canonical import GENESIS_HASH, format_time
from audit.db import read_only_snapshot_with_writer
from audit.log import iter_events, row_text
from audit.models import AuditEvent, ChainVerification, Checkpoint, MerkleNode
from audit.pgblocks import Row
from audit.tree import StoredTree, TreeError
from core import jobs

logger = logging.getLogger(__name__)

BLOCK_LEVEL = 12
BLOCK = 1 << BLOCK_LEVEL  # events per block: a complete subtree of the Merkle tree


@dataclass
class Report:
    """`problem`: altered, missing, out_of_order, broken_link, checkpoint, tree_altered,
    rolled_back, or "" when intact."""

    ok: bool
    count: int
    last_seq: int
    last_hash: str
    first_bad_seq: int | None = None
    problem: str = ""
    message: str = ""
    checkpoints: int = 0
    trusted: int = 0


class Problem(Exception):
    def __init__(self, seq: int | None, kind: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.kind, self.message = seq, kind, message


@dataclass(frozen=True)
class Trusted:
    """A checkpoint kept outside the database (by an auditor, a witness, the mirror), its
    signature already checked: the log must still extend it."""

    size: int
    root: bytes
    label: str


# --- reading -----------------------------------------------------------------------------------

# Worker processes that read and hash parts of the log at once, on PostgreSQL, when the log
# has at least PARALLEL_MIN events; each takes CHUNK_BLOCKS blocks at a time.
WORKERS = min(2, os.cpu_count() or 1)
PARALLEL_MIN = 16 * BLOCK
CHUNK_BLOCKS = 8
# Seconds to wait for a worker's part before reading on here (a part takes well under one).
WORKER_TIMEOUT = 120


def canonical_texts_in_sql(limit: int | None = None) -> list[tuple[int, str]]:
    """(seq, text) as the verifier builds them from what PostgreSQL sends (for the test that
    holds them byte-equal to audit.canonical's)."""
    with transaction.atomic(), connection.cursor() as cursor:
        pgblocks.configure(cursor, "LOCAL")
        cursor.execute(pgblocks.SQL, [0, limit or pgblocks.NO_END])
        read = pgblocks.rows(cursor.fetchall(), {})
    return [(row.seq, row.data[1:].decode()) for row in read]


def _blocks(after: int = 0) -> Iterator[list[Row]]:
    """The sealed events after seq `after`, in seq order, BLOCK at a time."""
    if connection.vendor == "postgresql":
        # A named (server-side) cursor streams the log instead of loading it.
        with connection.cursor() as cursor, cursor.connection.cursor(name="audit_verify") as rows:
            pgblocks.configure(cursor, "LOCAL")
            rows.itersize = BLOCK
            if after:
                rows.execute(pgblocks.SQL, (after, pgblocks.NO_END))
            else:
                rows.execute(pgblocks.SQL_ALL)
            cache: dict = {}
            while block := rows.fetchmany(BLOCK):
                if len(cache) > 10_000:  # format-1 events have a time each: keep it small
                    cache.clear()
                yield pgblocks.rows(block, cache)
        return
    block = []
    for row in iter_events(chunk_size=BLOCK, start=after + 1 if after else None):
        recorded = format_time(row[10]) if row[10] else None
        data = b"\x00" + row_text(row).encode()
        block.append(Row(row[0], data, row[7], row[8], row[9], format_time(row[1]), recorded))
        if len(block) == BLOCK:
            yield block
            block = []
    if block:
        yield block


def _summaries(snapshot: str, size: int) -> Iterator[pgblocks.Summary]:
    """The blocks of events 1..size, read and hashed by WORKERS processes in `snapshot`."""
    chunk = BLOCK * CHUNK_BLOCKS
    tasks = [(lo, min(lo + chunk, size), BLOCK) for lo in range(0, size, chunk)]
    # Forked: a spawned child would import the __main__ module again (whatever script called
    # the verifier). A forked child opens its own connection and never touches the ones it
    # inherits, and ends by os._exit or SIGTERM (Pool), so it never closes them either.
    pool = multiprocessing.get_context("fork").Pool(
        WORKERS, initializer=pgblocks.start_worker, initargs=(_conninfo(), snapshot)
    )
    try:
        parts = pool.imap(pgblocks.summarize, tasks)
        for _ in tasks:
            # A worker killed outright (SIGKILL, out of memory) loses its task and imap would
            # wait forever: past the timeout, the verifier reads on by itself.
            yield from parts.next(timeout=WORKER_TIMEOUT)
    finally:
        pool.terminate()
        pool.join()


def _conninfo() -> str:
    params = connection.get_connection_params()
    return make_conninfo(
        **{
            key: value
            for key, value in params.items()
            if isinstance(value, str | int) and key != "prepare_threshold" and value != ""
        }
    )


def _parallel_snapshot(isolated: bool) -> tuple[str, int] | None:
    """(the exported snapshot, the log's size) when the log is read by worker processes: on
    PostgreSQL, in a snapshot of our own, with a log large enough, and unless this process is
    itself a daemon (a task worker's child), which may not start processes."""
    if (
        not isolated
        or WORKERS < 2
        or multiprocessing.current_process().daemon
        # Not from a server's request thread or the embedded jobs' thread: forking there, with
        # other threads busy, could leave the child holding a lock one of them held (libpq,
        # OpenSSL); read here instead. (From a main thread, a child stuck so costs the
        # worker timeout, then this process reads on.)
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), min(seq), max(seq) FROM audit_auditevent WHERE seq IS NOT NULL"
        )
        count, first, size = cursor.fetchone()
        # Only a log numbered 1..n is split into ranges; anything else is read here, which
        # names what is out of place.
        if count < PARALLEL_MIN or first != 1 or size != count:
            return None
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0], size


# --- the pass ---------------------------------------------------------------------------------


def verify_log(
    *,
    vkey: str | None = None,
    job: int | None = None,
    trusted: Sequence[Trusted] = (),
) -> Report:
    """Verify everything; `vkey` is the checkpoint public key (default: this server's); `job`,
    the ChainVerification whose heart beats while the pass runs; `trusted`, checkpoints kept
    outside the database that the log must still extend."""
    # One consistent snapshot of events, nodes and checkpoints for the whole pass.
    with read_only_snapshot_with_writer() as (isolated, writer):
        beat = jobs.Heartbeat(writer, ChainVerification, job) if job else _no_beat
        return _verify(vkey, beat, list(trusted), isolated)


def _no_beat(**columns) -> None:
    return None


def _verify(vkey: str | None, beat: Callable, trusted: list[Trusted], isolated: bool) -> Report:
    checkpoints = list(Checkpoint.objects.order_by("tree_size"))
    walk = Walk(checkpoints, trusted)
    try:
        _check_checkpoint_notes(checkpoints, vkey)
        _walk(walk, beat, _parallel_snapshot(isolated))
        walk.finish()
        _check_consistency(checkpoints)
        _check_trusted_consistency(trusted, checkpoints)
    except Problem as problem:
        return Report(
            False,
            walk.count,
            walk.count,
            walk.prev_hash,
            problem.seq,
            problem.kind,
            problem.message,
            len(checkpoints),
            len(trusted),
        )
    return Report(
        True,
        walk.count,
        walk.count,
        walk.prev_hash,
        message=_summary(walk.count, checkpoints, trusted),
        checkpoints=len(checkpoints),
        trusted=len(trusted),
    )


def _walk(walk: Walk, beat: Callable, parallel: tuple[str, int] | None) -> None:
    """Every block in order: from the worker processes' summaries while they check out, then
    (all of it without workers) read and checked here, which names the first problem.

    Without the cyclic garbage collector: the rows make millions of tuples and no cycles, and
    each collection of the oldest generation would walk every object the process holds."""
    # Only from the main thread (not while a server's other requests would go without it).
    collecting = gc.isenabled() and threading.current_thread() is threading.main_thread()
    if collecting:
        gc.disable()
    try:
        _walk_blocks(walk, beat, parallel)
    finally:
        if collecting:
            gc.enable()


def _walk_blocks(walk: Walk, beat: Callable, parallel: tuple[str, int] | None) -> None:
    if parallel is not None:
        summaries = _summaries(*parallel)
        try:
            while True:
                try:
                    summary = next(summaries, None)
                except Exception:  # a worker that could not connect or read: go on here
                    logger.exception("audit_verify: a worker process failed; reading on here")
                    break
                if summary is None or not walk.summary(summary):
                    break
                beat()
        finally:
            summaries.close()
    for block in _blocks(walk.count):
        walk.block(block)
        beat()


def _summary(count: int, checkpoints: list[Checkpoint], trusted: list[Trusted]) -> str:
    summary = f"OK: {count} events, chain intact"
    if checkpoints:
        latest = checkpoints[-1]
        summary += (
            f"; {len(checkpoints)} signed checkpoints verified, the latest at size "
            f"{latest.tree_size} with root {latest.root[:16]}…"
        )
    if trusted:
        summary += f"; consistent with {len(trusted)} trusted checkpoint(s)"
    return summary


@dataclass
class Walk:
    """The verifier's state between blocks."""

    checkpoints: list[Checkpoint]
    trusted: list[Trusted]
    count: int = 0
    prev_hash: str = GENESIS_HASH
    prev_time: str = ""
    builder: merkle.TreeBuilder = field(default_factory=merkle.TreeBuilder)
    # Roots to check, by size: (size, what) for signed and trusted checkpoints.
    pending: list = field(default_factory=list)
    # The stored tree's nodes at the block level and above, and the stored nodes, as (level,
    # index), that the events do not give: which of the two was altered is told at the next
    # signed root.
    stored: dict[tuple[int, int], bytes] = field(default_factory=dict)
    suspects: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending = sorted(
            [(c.tree_size, c) for c in self.checkpoints] + [(t.size, t) for t in self.trusted],
            key=lambda item: item[0],
        )
        nodes = MerkleNode.objects.filter(level__gte=BLOCK_LEVEL)
        rows = nodes.values_list("level", "index", "hash")
        self.stored = {(level, index): bytes(h) for level, index, h in rows}

    # --- one block ---

    def block(self, rows: list[Row]) -> None:
        start = self.count + 1
        if rows[0].seq != start or rows[-1].seq != start + len(rows) - 1:
            _find_gap(rows, start)
        sha256 = hashlib.sha256
        leaves = [sha256(row.data).digest() for row in rows]
        self._check_block(rows, leaves)
        self._advance(leaves, rows[-1].hash, rows[-1].time)

    def summary(self, block: pgblocks.Summary) -> bool:
        """Take a block as a worker read it, if it checked out and follows on; False, taking
        nothing, if not (then this process reads it, to name what is wrong)."""
        if not (
            block.clean
            and block.start == self.count + 1
            and block.first_prev_hash == self.prev_hash
            and self.prev_time <= block.first_time
        ):
            return False
        data = block.leaves
        leaves = [data[i : i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]
        self._advance(leaves, block.last_hash, block.last_time, block.root)
        return True

    def _advance(self, leaves: list[bytes], last_hash: str, last_time: str, root=None) -> None:
        start = self.count + 1
        if len(leaves) == BLOCK and (start - 1) % BLOCK == 0:
            self._add_whole_block(leaves, (start - 1) >> BLOCK_LEVEL, root)
        else:
            self._add_leaves(leaves, start)
        self.count += len(leaves)
        self.prev_hash, self.prev_time = last_hash, last_time

    def _check_block(self, rows: list[Row], leaves: list[bytes]) -> None:
        """Hashes, links and times of a whole block at once; _check_event names the first
        problem when something is off."""
        own = pgblocks.own_hashes(rows, leaves)
        if not pgblocks.consistent(rows, own, self.prev_hash, self.prev_time):
            prev_hash, prev_time = self.prev_hash, self.prev_time
            for row, mine in zip(rows, own, strict=True):
                try:
                    _check_event(row, mine, prev_hash, prev_time)
                except Problem:
                    # The report counts the events verified before the first bad one.
                    self.count, self.prev_hash = row.seq - 1, prev_hash
                    raise
                prev_hash, prev_time = row.hash, row.time

    def _add_whole_block(self, leaves: list[bytes], index: int, root: bytes | None) -> None:
        root = root or merkle.subtree_root(leaves)
        end = self.count + BLOCK
        inside = [(size, what) for size, what in self.pending if size < end]
        for size, what in inside:  # checkpoints within the block: their roots from its leaves
            self._check_root(size, what, self._root_within(leaves, size - self.count))
        above = self.builder.add_subtree(root, BLOCK_LEVEL)
        for level, i, h in [(BLOCK_LEVEL, index, root), *above]:
            stored = self.stored.get((level, i))
            if stored is not None and stored != h:
                self.suspects.append((level, i))
        for size, what in [(s, w) for s, w in self.pending if s == end]:
            self._check_root(size, what, self.builder.root())
        self._pop_pending(end)

    def _root_within(self, leaves: list[bytes], k: int) -> bytes:
        """The root of the tree up to `k` leaves into the block being added."""
        builder = self.builder.copy()
        for level, index in merkle.decompose(k):
            part = leaves[index << level : (index + 1) << level]
            builder.add_subtree(merkle.subtree_root(part), level)
        return builder.root()

    def _add_leaves(self, leaves: list[bytes], start: int) -> None:
        """A block that is not a whole aligned one (the log's last): leaf by leaf, each
        against the leaf stored for it."""
        stored = dict(
            MerkleNode.objects.filter(
                level=0, index__gte=start - 1, index__lt=start - 1 + len(leaves)
            ).values_list("index", "hash")
        )
        for offset, leaf in enumerate(leaves):
            kept = stored.get(start - 1 + offset)
            if kept is not None and bytes(kept) != leaf:
                self.suspects.append((0, start - 1 + offset))
            self.builder.add(leaf)
            size = start + offset
            while self.pending and self.pending[0][0] == size:
                self._check_root(size, self.pending[0][1], self.builder.root())
                self.pending.pop(0)

    def _pop_pending(self, size: int) -> None:
        self.pending = [(s, w) for s, w in self.pending if s > size]

    # --- roots ---

    def _check_root(self, size: int, what, root: bytes) -> None:
        if isinstance(what, Trusted):
            if root != what.root:
                raise Problem(
                    size,
                    "rolled_back",
                    f"the log is not consistent with the trusted checkpoint {what.label} (size "
                    f"{size}): its first {size} events give the root {root.hex()[:16]}…, not "
                    f"{what.root.hex()[:16]}…: the log was rewritten or rolled back",
                )
            return
        self._settle_suspects(what, root.hex() == what.root)
        if root.hex() != what.root:
            raise Problem(
                size,
                "checkpoint",
                f"the events up to #{size} do not give the signed checkpoint's Merkle root "
                f"({what.root[:16]}…): the log was rewritten",
            )

    def _settle_suspects(self, checkpoint: Checkpoint, intact: bool) -> None:
        """Stored leaves or block nodes that the events do not give: if the events still give
        the signed root, the stored tree was altered (name the node); if not, the first event
        whose leaf differs from the one sealed for it was."""
        suspects = [s for s in self.suspects if _first_seq(s) <= checkpoint.tree_size]
        if not suspects:
            return
        seq, node = _culprit(suspects[0])
        if intact:
            raise Problem(
                seq,
                "tree_altered",
                f"the stored Merkle {node} was altered: the events are intact (their hashes, "
                f"links and the signed root of checkpoint {checkpoint.tree_size} agree)",
            )
        raise Problem(
            seq,
            "altered",
            f"event #{seq} differs from the leaf sealed for it: it was changed after it was "
            "sealed into the Merkle tree",
        )

    def finish(self) -> None:
        checkpoints = [(s, w) for s, w in self.pending if isinstance(w, Checkpoint)]
        if checkpoints:
            size = checkpoints[0][0]
            raise Problem(
                self.count + 1,
                "missing",
                f"the signed checkpoint of size {size} covers events #{self.count + 1}–#{size}, "
                "which are missing from the log",
            )
        trusted = [w for _, w in self.pending if isinstance(w, Trusted)]
        if trusted:
            t = trusted[0]
            raise Problem(
                self.count + 1,
                "rolled_back",
                f"the log has {self.count} events, but the trusted checkpoint {t.label} covers "
                f"{t.size}: events were removed (the log was rolled back)",
            )
        if self.suspects:
            seq, node = _culprit(self.suspects[0])
            raise Problem(
                seq,
                "altered",
                f"event #{seq} differs from the {node} stored for it: the event or the stored "
                "tree was changed after sealing (no signed checkpoint covers it yet to tell which)",
            )


def _first_seq(suspect: tuple[int, int]) -> int:
    """The first event under a stored node (level, index)."""
    level, index = suspect
    return (index << level) + 1


def _culprit(suspect: tuple[int, int]) -> tuple[int, str]:
    """(the first event concerned, the stored node that differs), by looking closer: a block
    is searched leaf by leaf, then level by level, for the first stored node that differs."""
    level, index = suspect
    if level == 0:
        return index + 1, f"leaf of event #{index + 1}"
    if level > BLOCK_LEVEL:
        return _first_seq(suspect), f"node L{level}#{index}"
    first = index << BLOCK_LEVEL
    rows = AuditEvent.objects.filter(seq__gt=first, seq__lte=first + BLOCK).order_by("seq")
    leaves = [merkle.leaf_hash(event.canonical.encode()) for event in rows]
    stored = _stored_nodes(first)
    level = leaves
    for depth in range(BLOCK_LEVEL + 1):
        base = first >> depth
        for offset, h in enumerate(level):
            kept = stored.get((depth, base + offset))
            if kept is not None and kept != h:
                seq = first + (offset << depth) + 1
                what = f"leaf of event #{seq}" if depth == 0 else f"node L{depth}#{base + offset}"
                return seq, what
        it = iter(level)
        level = [merkle.node_hash(a, b) for a, b in zip(it, it, strict=False)]
    return first + 1, f"node L{BLOCK_LEVEL}#{index}"


def _stored_nodes(first: int) -> dict[tuple[int, int], bytes]:
    nodes = {}
    for depth in range(BLOCK_LEVEL + 1):
        start = first >> depth
        for index, h in MerkleNode.objects.filter(
            level=depth, index__gte=start, index__lt=start + (BLOCK >> depth)
        ).values_list("index", "hash"):
            nodes[depth, index] = bytes(h)
    return nodes


def _find_gap(rows: list[Row], start: int) -> None:
    expected = start
    for row in rows:
        if row.seq != expected:
            gap = f"#{expected}" if row.seq == expected + 1 else f"#{expected}–#{row.seq - 1}"
            raise Problem(
                expected,
                "missing",
                f"event {gap} is missing: the log jumps from #{expected - 1} to #{row.seq}",
            )
        expected += 1


def _check_event(row: Row, own: str, prev_hash: str, prev_time: str) -> None:
    seq = row.seq
    if own != row.hash:
        raise Problem(
            seq, "altered", f"event #{seq} was altered: its stored hash does not match its contents"
        )
    if row.prev_hash != prev_hash:
        linked = AuditEvent.objects.filter(hash=row.prev_hash).values_list("seq", flat=True).first()
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
    if row.time < prev_time:
        raise Problem(
            seq,
            "out_of_order",
            f"event #{seq}'s time {row.time} is earlier than event #{seq - 1}'s",
        )
    if row.format == 2 and row.recorded_at > row.time:
        raise Problem(
            seq,
            "out_of_order",
            f"event #{seq} was recorded at {row.recorded_at}, after it was sealed ({row.time})",
        )


# --- signatures and proofs ----------------------------------------------------------------------


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
    """Successive checkpoints, proven consistent from the stored tree. The events already gave
    every signed root, so a failure here is damage to the stored tree."""
    tree = StoredTree()
    for old, new in itertools.pairwise(checkpoints):
        _prove(tree, old.tree_size, bytes.fromhex(old.root), new, f"checkpoint {old.tree_size}")


def _check_trusted_consistency(trusted: list[Trusted], checkpoints: list[Checkpoint]) -> None:
    """Each trusted checkpoint and the latest signed one: the RFC 6962 consistency proof a
    light client would check, from the stored tree."""
    if not checkpoints:
        return
    tree, latest = StoredTree(), checkpoints[-1]
    for t in trusted:
        if t.size <= latest.tree_size:
            _prove(tree, t.size, t.root, latest, f"trusted checkpoint {t.label}")


def _prove(tree: StoredTree, old_size: int, old_root: bytes, new: Checkpoint, name: str) -> None:
    try:
        proof = tree.consistency_proof(old_size, new.tree_size)
    except TreeError as exc:
        raise Problem(
            new.tree_size,
            "tree_altered",
            f"cannot prove {name} and checkpoint {new.tree_size} consistent from the stored "
            f"tree ({exc}); the events themselves give every signed root",
        ) from None
    if not merkle.verify_consistency(
        old_size, new.tree_size, old_root, bytes.fromhex(new.root), proof
    ):
        raise Problem(
            new.tree_size,
            "tree_altered",
            f"the stored tree does not prove {name} (size {old_size}) and checkpoint "
            f"{new.tree_size} consistent, though the events give both roots: the stored tree "
            "was altered",
        )
