"""RFC 6962 Merkle trees (§2.1, as kept in RFC 9162 §2.1): hashes, roots, proofs, verification.

Standard library only: the offline verifier (`python -m audit.verify`) imports this module
without Django.

Hashing. A leaf is SHA-256(0x00 ‖ data), an interior node SHA-256(0x01 ‖ left ‖ right), the
empty tree SHA-256(""). MTH(D[n]) splits the n leaves at k, the largest power of two smaller
than n, and hashes MTH(D[0:k]) with MTH(D[k:n]). Every function here takes *leaf hashes*
(already `leaf_hash`ed), never raw leaf data.

Subtree oracles. The proofs need MTH of sub-ranges of the leaves. Each algorithm is written
once, against a `SubtreeRoot` callable `subtree_root(start, end) -> MTH(D[start:end])`
(always with 0 <= start < end <= tree size); the list-based functions are thin wrappers that
answer it from a list of leaf hashes. The database answers it from stored nodes instead, and
relies on this property of the RFC 6962 recursions, which the tests check exhaustively:

    Alignment. Every range [start, end) that `root_with`, `inclusion_proof_with` and
    `consistency_proof_with` pass to `subtree_root`, and every range visited when such a range
    is itself split the RFC 6962 way, has `start` a multiple of the smallest power of two
    >= end - start. So whenever end - start is a power of two 2^j, the range is the complete,
    *aligned* subtree [k·2^j, (k+1)·2^j): node (level j, index k) of the tree.

    Why: it holds for [0, n). Splitting [s, s+n) with s a multiple of 2k (2k being the
    smallest power of two >= n) gives [s, s+k), whose size k divides s, and [s+k, s+n), whose
    size n-k <= k has its smallest power of two dividing k, which divides s+k.

So an oracle may answer a power-of-two range from the stored node (level j, index start >> j)
and any other range by splitting it at the largest power of two below its size and recursing;
it then only ever reads stored complete subtrees, O(log n) of them per proof or root.

`TreeBuilder` builds the tree incrementally, emitting each complete subtree as it is
completed, and keeps only the O(log n) roots of the complete subtrees that make up its size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeRoot = Callable[[int, int], bytes]
"""subtree_root(start, end) -> MTH(D[start:end]), for 0 <= start < end <= tree size."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than `size` (which must be >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def is_aligned(start: int, end: int) -> bool:
    """Whether [start, end) is a complete aligned subtree: a power-of-two size dividing start."""
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def decompose(size: int) -> list[tuple[int, int]]:
    """The complete aligned subtrees that make up the first `size` leaves, left to right and
    largest first, as (level, index) pairs: one per set bit of `size`."""
    _check_size(size)
    parts, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append((level, start >> level))
            start += 1 << level
    return parts


# ---------------------------------------------------------------- algorithms over an oracle


def root_with(tree_size: int, subtree_root: SubtreeRoot) -> bytes:
    """MTH of the first `tree_size` leaves; EMPTY_ROOT (without asking the oracle) for 0."""
    _check_size(tree_size)
    if tree_size == 0:
        return EMPTY_ROOT
    return subtree_root(0, tree_size)


def inclusion_proof_with(index: int, tree_size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """RFC 6962 PATH(index, D[tree_size]), leaf to root. Raises ValueError unless
    0 <= index < tree_size."""
    _check_size(tree_size)
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of size {tree_size}")
    path = []
    start, end = 0, tree_size
    # PATH recurses into the half holding the leaf and appends the other half's root after
    # the deeper elements; walking down collects them root first, hence the reverse.
    while end - start > 1:
        mid = start + split_point(end - start)
        if index < mid:
            path.append(subtree_root(mid, end))
            end = mid
        else:
            path.append(subtree_root(start, mid))
            start = mid
    path.reverse()
    return path


def consistency_proof_with(old_size: int, new_size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[new_size]) = SUBPROOF(old_size, D[new_size], true);
    [] when old_size is 0 or equal to new_size. Raises ValueError unless
    0 <= old_size <= new_size."""
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is not between 0 and the new size {new_size}")
    if old_size in (0, new_size):
        return []
    proof = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        mid = start + split_point(end - start)
        if m <= mid - start:
            proof.append(subtree_root(mid, end))
            end = mid
        else:
            proof.append(subtree_root(start, mid))
            m -= mid - start
            start = mid
            # The old tree's root is no longer the root of the range we are in.
            complete = False
    if not complete:
        proof.append(subtree_root(start, end))
    proof.reverse()
    return proof


# ------------------------------------------------------------ the same over a list of leaves


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the given leaf hashes; EMPTY_ROOT for none."""
    return root_with(len(leaf_hashes), list_oracle(leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) with n = len(leaf_hashes)."""
    return inclusion_proof_with(index, len(leaf_hashes), list_oracle(leaf_hashes))


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) with n = len(leaf_hashes)."""
    return consistency_proof_with(old_size, len(leaf_hashes), list_oracle(leaf_hashes))


def list_oracle(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    """A SubtreeRoot answered by hashing the given leaf hashes (O(end - start) per call)."""

    def subtree_root(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaf_hashes):
            raise ValueError(f"range [{start}, {end}) is outside {len(leaf_hashes)} leaves")
        return _mth(leaf_hashes[start:end])

    return subtree_root


def subtree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of 2^k leaf hashes (a complete subtree), level by level in tight loops."""
    level, sha256 = list(leaves), hashlib.sha256
    while len(level) > 1:
        it = iter(level)
        level = [
            sha256(b"\x01" + left + right).digest() for left, right in zip(it, it, strict=True)
        ]
    return level[0]


def _mth(hashes: Sequence[bytes]) -> bytes:
    """MTH of a non-empty run of leaf hashes, level by level: pairing left to right and carrying
    an odd last node up unchanged builds exactly the RFC 6962 tree (the tests check it against
    the recursive definition)."""
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# ------------------------------------------------------------------------------ verification


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows the leaf hash at `index` in the tree of `tree_size` with `root`
    (RFC 9162 §2.1.3.2). False, never an exception, for any malformed argument."""
    if not (_is_size(index) and _is_size(tree_size) and index < tree_size):
        return False
    hashes = _hashes([leaf_hash, root, *proof]) if _is_seq(proof) else None
    if hashes is None:
        return False
    r, expected, path = hashes[0], hashes[1], hashes[2:]
    fn, sn = index, tree_size - 1
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Climb past the levels where this node has no right sibling (the tree's right edge).
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `old_size` with `old_root` is a prefix of the tree of
    `new_size` with `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal
    roots; old size 0 needs an empty proof and old_root == EMPTY_ROOT. False, never an
    exception, for any malformed argument."""
    if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
        return False
    hashes = _hashes([old_root, new_root, *proof]) if _is_seq(proof) else None
    if hashes is None:
        return False
    first_hash, second_hash, path = hashes[0], hashes[1], hashes[2:]
    if old_size == new_size:
        return not path and first_hash == second_hash
    if old_size == 0:
        return not path and first_hash == EMPTY_ROOT
    if not path:
        return False
    if old_size & (old_size - 1) == 0:
        # The old tree is a complete subtree, so the proof leaves out its root: we know it.
        path = [first_hash, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_hash and sr == second_hash


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seq(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _hashes(values: Sequence[object]) -> list[bytes] | None:
    """The values as bytes if every one is a 32-byte bytes-like hash, else None."""
    out = []
    for value in values:
        if not isinstance(value, bytes | bytearray | memoryview):
            return None
        value = bytes(value)
        if len(value) != HASH_SIZE:
            return None
        out.append(value)
    return out


def _check_size(size: int) -> None:
    if not _is_size(size):
        raise ValueError(f"a tree size must be a non-negative integer, not {size!r}")


# ---------------------------------------------------------------------------- streaming


class TreeBuilder:
    """Builds the tree one leaf hash at a time, holding only the roots of the complete
    subtrees that make up its size (one per set bit, largest first)."""

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def resume(cls, size: int, stack: Sequence[bytes]) -> TreeBuilder:
        """A builder that continues a tree of `size` leaves, given the roots of the complete
        subtrees listed by `decompose(size)`, in that order. Raises ValueError if their
        number or length is wrong (their values cannot be checked here)."""
        parts = decompose(size)
        if len(stack) != len(parts):
            raise ValueError(
                f"a tree of size {size} is made of {len(parts)} complete subtrees, not {len(stack)}"
            )
        hashes = _hashes(list(stack))
        if hashes is None:
            raise ValueError("every subtree root must be a 32-byte hash")
        builder = cls()
        builder._size, builder._stack = size, hashes
        return builder

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """The roots of the complete subtrees that make up the tree, as `resume` takes them."""
        return list(self._stack)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the complete subtrees it completes, bottom up, as
        (level, index, hash): first (0, its position, leaf), then one per level it closes.
        A node at level L, index i covers leaves [i·2^L, (i+1)·2^L)."""
        hashes = _hashes([leaf])
        if hashes is None:
            raise ValueError("a leaf hash must be 32 bytes")
        h, level, index = hashes[0], 0, self._size
        completed = [(level, index, h)]
        # An odd index is a right child: its left sibling is the last complete subtree.
        while index & 1:
            h = node_hash(self._stack.pop(), h)
            level, index = level + 1, index >> 1
            completed.append((level, index, h))
        self._stack.append(h)
        self._size += 1
        return completed

    def add(self, leaf: bytes) -> None:
        """append() for a verifier streaming leaves it computed itself: no report of completed
        subtrees and no re-check of the leaf (it must be a 32-byte hash)."""
        h, index, stack = leaf, self._size, self._stack
        while index & 1:
            h = hashlib.sha256(b"\x01" + stack.pop() + h).digest()
            index >>= 1
        stack.append(h)
        self._size += 1

    def add_subtree(self, h: bytes, level: int) -> list[tuple[int, int, bytes]]:
        """Add the root of a complete subtree of 2^level leaves; the size must be a multiple
        of 2^level (the subtree is aligned), as when a verifier adds whole blocks. Returns the
        subtrees above it that it completes, as (level, index, hash), bottom up."""
        if self._size & ((1 << level) - 1):
            raise ValueError(f"a subtree of level {level} cannot start at leaf {self._size}")
        self._size += 1 << level
        index, stack, completed = (self._size >> level) - 1, self._stack, []
        while index & 1:
            h = hashlib.sha256(b"\x01" + stack.pop() + h).digest()
            index, level = index >> 1, level + 1
            completed.append((level, index, h))
        stack.append(h)
        return completed

    def copy(self) -> TreeBuilder:
        builder = TreeBuilder()
        builder._size, builder._stack = self._size, list(self._stack)
        return builder

    def root(self) -> bytes:
        """MTH of every leaf appended so far, from the complete subtrees alone: MTH splits off
        the largest complete subtree first, so it is the right fold of the stack."""
        if not self._stack:
            return EMPTY_ROOT
        r = self._stack[-1]
        for h in reversed(self._stack[:-1]):
            r = node_hash(h, r)
        return r
