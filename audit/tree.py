"""The log's Merkle tree, kept in the database as the hashes of complete aligned subtrees.

Sealing appends the leaves of new events (SHA-256(0x00 ‖ canonical bytes)) and the subtrees
they complete; nothing already sealed is rehashed, so sealing costs O(new events + log n).
Proofs and roots are built from O(log n) stored nodes: every complete subtree that the
RFC 6962 recursions visit is aligned (see audit.merkle), so it is a stored node.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable

from django.db import connection
from django.utils import timezone

from audit import merkle
from audit.log import EVENT_COLUMNS, iter_events, log_size, row_text
from audit.models import AuditEvent, MerkleNode, TreeState
from core import bulk

NODE_COLUMNS = ("level", "index", "hash")
# pg_advisory_xact_lock key serializing sealing (and checkpoint signing); "OVTREE".
TREE_LOCK_KEY = 0x4F5654524545
# Before a checkpoint is signed, sealed events are spot-checked against their stored leaves:
# every one of a log this small, else the first, the last and this many at random.
SPOT_ALL = 64
SPOT_RANDOM = 16


class TreeError(Exception):
    """The stored tree and the log disagree: the log is not an extension of what was sealed."""


def sealed_size() -> int:
    """How many events the stored tree covers (the largest size it was extended to)."""
    return TreeState.objects.order_by("-size").values_list("size", flat=True).first() or 0


def lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TREE_LOCK_KEY])


def leaf_of(row: tuple) -> bytes:
    """The Merkle leaf of an event row as returned by audit.log.iter_events."""
    return merkle.leaf_hash(row_text(row).encode())


def extend(*, to: int | None = None, chunk: int = 5000) -> int:
    """Add the sealed events the stored tree does not cover yet, up to `to` (default: all),
    and return the size it covers. The sealer keeps the tree in step with the log as it seals;
    this catches up a log whose events were appended before it did (format 1). Must run in a
    transaction; takes the tree lock."""
    lock()
    size = sealed_size()
    last = log_size()
    target = last if to is None else min(to, last)
    if last < size:
        raise TreeError(f"the log has {last} events but {size} were sealed: events were removed")
    if target <= size:
        return size
    # A cheap guard that the log was not rewritten under the stored tree (spot_check and
    # audit_verify look further).
    check_leaves([size] if size else [])
    builder = merkle.TreeBuilder.resume(size, StoredTree().frontier(size))
    nodes, expected = [], size + 1
    for row in iter_events(chunk_size=chunk, start=size + 1, until=target):
        if row[0] != expected:
            raise TreeError(f"event #{expected} is missing from the log")
        expected += 1
        nodes += builder.append(leaf_of(row))
        if len(nodes) >= chunk:
            bulk.insert_tuples(MerkleNode, NODE_COLUMNS, nodes)
            nodes = []
    bulk.insert_tuples(MerkleNode, NODE_COLUMNS, nodes)
    TreeState.objects.create(size=target, updated_at=timezone.now())
    return target


def spot_sample(size: int) -> set[int]:
    """Which sealed events a spot check recomputes: all of a small log; otherwise the first,
    the last and SPOT_RANDOM others drawn at random, so that whoever rewrites an event cannot
    know whether the next checkpoint will look at it."""
    if size <= SPOT_ALL:
        return set(range(1, size + 1))
    return {1, size, *secrets.SystemRandom().sample(range(2, size), SPOT_RANDOM)}


def spot_check(size: int, *, also: Iterable[int] = ()) -> None:
    """Recompute the leaves of a sample of the first `size` sealed events (and of `also`) from
    their rows; TreeError if one differs from its stored leaf. Two queries, whatever the size:
    the full check is audit_verify's, daily."""
    check_leaves(spot_sample(size) | {seq for seq in also if 1 <= seq <= size})


def check_leaves(seqs: Collection[int]) -> None:
    """The events `seqs` must still be the events sealed for them; TreeError names the first
    that is not."""
    if not seqs:
        return
    rows = {
        row[0]: row for row in AuditEvent.objects.filter(seq__in=seqs).values_list(*EVENT_COLUMNS)
    }
    sealed = dict(
        MerkleNode.objects.filter(level=0, index__in=[seq - 1 for seq in seqs]).values_list(
            "index", "hash"
        )
    )
    for seq in sorted(seqs):
        row, leaf = rows.get(seq), sealed.get(seq - 1)
        if row is None:
            raise TreeError(f"event #{seq} is gone from under the sealed tree")
        if leaf is None:
            raise TreeError(f"no stored leaf for event #{seq}: the stored tree is damaged")
        if leaf_of(row) != bytes(leaf):
            raise TreeError(
                f"event #{seq} no longer matches the leaf sealed for it: the log was rewritten"
            )


class StoredTree:
    """Answers MTH(D[start:end]) from stored complete subtrees (one query per node, cached)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            value = (
                MerkleNode.objects.filter(level=level, index=index)
                .values_list("hash", flat=True)
                .first()
            )
            if value is None:
                raise TreeError(f"no stored node at level {level}, index {index}: not sealed yet")
            self._cache[key] = bytes(value)
        return self._cache[key]

    def subtree_root(self, start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            return self.node(size.bit_length() - 1, start // size)
        split = 1 << ((size - 1).bit_length() - 1)
        return merkle.node_hash(
            self.subtree_root(start, start + split), self.subtree_root(start + split, end)
        )

    def frontier(self, size: int) -> list[bytes]:
        """The roots of the complete subtrees that make up the first `size` leaves."""
        return [self.node(level, index) for level, index in merkle.decompose(size)]

    def root(self, size: int) -> bytes:
        return merkle.root_with(size, self.subtree_root)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof_with(index, size, self.subtree_root)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof_with(old_size, new_size, self.subtree_root)
