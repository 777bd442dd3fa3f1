"""RFC 6962 Merkle trees: audit.merkle against the definition, published vectors, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

MAX_SIZE = 300
# Comparing the list-backed proofs (O(n) each) with the stored-node ones costs O(n^3) overall;
# every size up to here is compared exhaustively, larger ones by hypothesis.
MAX_LIST_COMPARED = 160


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 §2.1 writes it, independent of audit.merkle."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:]))


LEAVES = [sha256(b"\x00" + i.to_bytes(4, "big")) for i in range(MAX_SIZE)]
ROOTS = [reference_mth(LEAVES[:n]) for n in range(MAX_SIZE + 1)]


def stored_nodes(size: int) -> dict[tuple[int, int], bytes]:
    """The complete aligned subtrees of the first `size` leaves, as TreeBuilder emits them."""
    builder, nodes = merkle.TreeBuilder(), {}
    for leaf in LEAVES[:size]:
        for level, index, h in builder.append(leaf):
            assert (level, index) not in nodes, "a node was emitted twice"
            nodes[level, index] = h
    return nodes


def strict_oracle(nodes: dict[tuple[int, int], bytes], size: int, asked: list | None = None):
    """Answers MTH(D[start:end]) only from stored complete aligned subtrees, splitting other
    ranges the RFC 6962 way; a power-of-two range that is not aligned fails the test."""

    def subtree_root(start: int, end: int) -> bytes:
        assert 0 <= start < end <= size, f"asked for [{start}, {end}) of a tree of {size}"
        if asked is not None:
            asked.append((start, end))
        width = end - start
        if width & (width - 1) == 0:
            assert start % width == 0, f"[{start}, {end}) is a complete but unaligned subtree"
            return nodes[width.bit_length() - 1, start // width]
        mid = start + merkle.split_point(width)
        return merkle.node_hash(subtree_root(start, mid), subtree_root(mid, end))

    return subtree_root


# -------------------------------------------------------------------------------- hashing


def test_it_hashes_leaves_and_nodes_with_the_rfc_6962_domain_prefixes():
    assert merkle.leaf_hash(b"abc") == sha256(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)


def test_it_gives_the_empty_tree_the_hash_of_nothing():
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root([]) == merkle.EMPTY_ROOT
    assert merkle.TreeBuilder().root() == merkle.EMPTY_ROOT


def test_it_computes_the_root_of_every_size_as_the_rfc_defines_it():
    for n in range(MAX_SIZE + 1):
        assert merkle.root(LEAVES[:n]) == ROOTS[n], n


# The RFC 6962 test vectors shared by Certificate Transparency implementations.
VECTOR_LEAVES = [
    bytes.fromhex(x)
    for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f")
]  # fmt: skip
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_it_matches_the_published_rfc_6962_vectors():
    leaves = [merkle.leaf_hash(data) for data in VECTOR_LEAVES]
    assert [merkle.root(leaves[: n + 1]).hex() for n in range(8)] == VECTOR_ROOTS
    assert [p.hex() for p in merkle.inclusion_proof(5, leaves)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert merkle.inclusion_proof(2, leaves[:3]) == [bytes.fromhex(VECTOR_ROOTS[1])]
    assert [p.hex() for p in merkle.consistency_proof(6, leaves)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [p.hex() for p in merkle.consistency_proof(2, leaves[:5])] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


# ----------------------------------------------------------------- every proof of every size


def test_every_inclusion_proof_of_every_size_up_to_300_verifies_from_stored_nodes_only():
    for n in range(MAX_SIZE + 1):
        oracle = strict_oracle(stored_nodes(n), n)
        assert merkle.root_with(n, oracle) == ROOTS[n]
        for i in range(n):
            proof = merkle.inclusion_proof_with(i, n, oracle)
            assert merkle.verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n]), (i, n)
            if n <= MAX_LIST_COMPARED:
                assert merkle.inclusion_proof(i, LEAVES[:n]) == proof, (i, n)


def test_every_consistency_proof_of_every_size_up_to_300_verifies_from_stored_nodes_only():
    for n in range(MAX_SIZE + 1):
        oracle = strict_oracle(stored_nodes(n), n)
        for m in range(n + 1):
            proof = merkle.consistency_proof_with(m, n, oracle)
            assert merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof), (m, n)
            if n <= MAX_LIST_COMPARED:
                assert merkle.consistency_proof(m, LEAVES[:n]) == proof, (m, n)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_oracle_and_list_proofs_agree_on_larger_trees(data):
    n = data.draw(st.integers(MAX_SIZE + 1, 1100), label="size")
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    builder, nodes = merkle.TreeBuilder(), {}
    for leaf in leaves:
        nodes.update(((lv, ix), h) for lv, ix, h in builder.append(leaf))
    oracle = strict_oracle(nodes, n)
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(0, n), label="old size")
    assert merkle.root_with(n, oracle) == merkle.root(leaves) == builder.root()
    assert merkle.inclusion_proof_with(i, n, oracle) == merkle.inclusion_proof(i, leaves)
    assert merkle.consistency_proof_with(m, n, oracle) == merkle.consistency_proof(m, leaves)


def test_proofs_ask_the_oracle_only_for_ranges_whose_start_is_aligned_to_their_size():
    # The property the database oracle relies on, stated on the requests themselves.
    for n in (1, 2, 3, 5, 7, 8, 13, 64, 100, 255, 256, 257):
        asked: list[tuple[int, int]] = []
        oracle = strict_oracle(stored_nodes(n), n, asked)
        merkle.root_with(n, oracle)
        for i in range(n):
            merkle.inclusion_proof_with(i, n, oracle)
        for m in range(n + 1):
            merkle.consistency_proof_with(m, n, oracle)
        for start, end in asked:
            ceiling = 1 << (end - start - 1).bit_length()
            assert start % ceiling == 0, (start, end, n)


def test_it_gives_empty_consistency_proofs_from_zero_and_to_the_same_size():
    assert merkle.consistency_proof(0, LEAVES[:7]) == []
    assert merkle.consistency_proof(7, LEAVES[:7]) == []
    assert merkle.consistency_proof(0, []) == []


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0)])
def test_it_refuses_to_build_an_inclusion_proof_for_a_leaf_outside_the_tree(index, size):
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof(index, LEAVES[:size])


@pytest.mark.parametrize("old_size", [-1, 4])
def test_it_refuses_to_build_a_consistency_proof_from_a_size_outside_the_tree(old_size):
    with pytest.raises(ValueError, match="old size"):
        merkle.consistency_proof(old_size, LEAVES[:3])


# ------------------------------------------------------------------------------- tampering

sizes_and_indexes = st.integers(1, 200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1))
)
sizes_and_old_sizes = st.integers(2, 200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, n - 1))
)


def flip(value: bytes, position: int, mask: int) -> bytes:
    out = bytearray(value)
    out[position % len(out)] ^= mask
    return bytes(out)


masks = st.integers(1, 255)


@settings(max_examples=200, deadline=None)
@given(sizes_and_indexes, st.integers(0, 31), masks)
def test_a_flipped_byte_in_the_leaf_or_root_fails_inclusion(case, position, mask):
    n, i = case
    proof = merkle.inclusion_proof(i, LEAVES[:n])
    assert merkle.verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])
    assert not merkle.verify_inclusion(flip(LEAVES[i], position, mask), i, n, proof, ROOTS[n])
    assert not merkle.verify_inclusion(LEAVES[i], i, n, proof, flip(ROOTS[n], position, mask))


@settings(max_examples=200, deadline=None)
@given(sizes_and_indexes.filter(lambda c: c[0] > 1), st.data(), masks)
def test_a_flipped_byte_in_any_proof_element_fails_inclusion(case, data, mask):
    n, i = case
    proof = merkle.inclusion_proof(i, LEAVES[:n])
    k = data.draw(st.integers(0, len(proof) - 1), label="element")
    position = data.draw(st.integers(0, 31), label="byte")
    proof[k] = flip(proof[k], position, mask)
    assert not merkle.verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])


@settings(max_examples=200, deadline=None)
@given(sizes_and_indexes, st.data())
def test_a_wrong_index_or_tree_size_fails_inclusion(case, data):
    n, i = case
    proof = merkle.inclusion_proof(i, LEAVES[:n])
    other_index = data.draw(st.integers(-3, n + 3).filter(lambda j: j != i), label="index")
    other_size = data.draw(st.integers(-3, MAX_SIZE).filter(lambda s: s != n), label="size")
    assert not merkle.verify_inclusion(LEAVES[i], other_index, n, proof, ROOTS[n])
    # A size only fixes the proof's shape, and sizes whose trees differ only off the leaf's path
    # give the same shape: a checkpoint signs the size with its root, so the claim checked is
    # "in the tree of this size with this root", and the root is the one of the claimed size.
    claimed_root = ROOTS[other_size] if other_size >= 0 else ROOTS[n]
    assert not merkle.verify_inclusion(LEAVES[i], i, other_size, proof, claimed_root)


@settings(max_examples=200, deadline=None)
@given(sizes_and_indexes, st.data())
def test_a_truncated_or_extended_proof_fails_inclusion(case, data):
    n, i = case
    proof = merkle.inclusion_proof(i, LEAVES[:n])
    if proof:
        cut = data.draw(st.integers(0, len(proof) - 1), label="kept")
        assert not merkle.verify_inclusion(LEAVES[i], i, n, proof[:cut], ROOTS[n])
    extra = data.draw(st.sampled_from([ROOTS[n], LEAVES[0], bytes(32)]), label="extra")
    assert not merkle.verify_inclusion(LEAVES[i], i, n, [*proof, extra], ROOTS[n])
    assert not merkle.verify_inclusion(LEAVES[i], i, n, [extra, *proof], ROOTS[n])


@settings(max_examples=200, deadline=None)
@given(sizes_and_old_sizes, st.data(), masks)
def test_a_flipped_byte_anywhere_fails_consistency(case, data, mask):
    n, m = case
    proof = merkle.consistency_proof(m, LEAVES[:n])
    assert merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
    position = data.draw(st.integers(0, 31), label="byte")
    assert not merkle.verify_consistency(m, n, flip(ROOTS[m], position, mask), ROOTS[n], proof)
    assert not merkle.verify_consistency(m, n, ROOTS[m], flip(ROOTS[n], position, mask), proof)
    k = data.draw(st.integers(0, len(proof) - 1), label="element")
    proof[k] = flip(proof[k], position, mask)
    assert not merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)


@settings(max_examples=200, deadline=None)
@given(sizes_and_old_sizes, st.data())
def test_wrong_sizes_or_a_truncated_or_extended_proof_fail_consistency(case, data):
    n, m = case
    proof = merkle.consistency_proof(m, LEAVES[:n])
    other_m = data.draw(st.integers(0, n).filter(lambda s: s != m), label="old size")
    other_n = data.draw(st.integers(m, MAX_SIZE).filter(lambda s: s != n), label="new size")
    # As for inclusion, the claim checked is about the trees of the claimed sizes and roots.
    assert not merkle.verify_consistency(other_m, n, ROOTS[other_m], ROOTS[n], proof)
    assert not merkle.verify_consistency(m, other_n, ROOTS[m], ROOTS[other_n], proof)
    cut = data.draw(st.integers(0, len(proof) - 1), label="kept")
    assert not merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof[:cut])
    extra = data.draw(st.sampled_from([ROOTS[m], ROOTS[n], LEAVES[0], bytes(32)]), label="extra")
    assert not merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], [*proof, extra])
    assert not merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], [extra, *proof])


def test_consistency_between_equal_sizes_needs_equal_roots_and_no_proof():
    assert merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert not merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    assert not merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])


def test_consistency_from_the_empty_tree_needs_the_empty_root_and_no_proof():
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[5], [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    assert not merkle.verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])


def test_consistency_from_a_larger_tree_to_a_smaller_one_fails():
    proof = merkle.consistency_proof(3, LEAVES[:5])
    assert not merkle.verify_consistency(5, 3, ROOTS[3], ROOTS[5], proof)
    assert not merkle.verify_consistency(5, 3, ROOTS[5], ROOTS[3], proof)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda a: {**a, "proof": None},
        lambda a: {**a, "proof": "not a list"},
        lambda a: {**a, "proof": [b"short"]},
        lambda a: {**a, "proof": [42]},
        lambda a: {**a, "root": b""},
        lambda a: {**a, "root": "0" * 64},
        lambda a: {**a, "leaf_hash": None},
        lambda a: {**a, "index": "1"},
        lambda a: {**a, "index": 1.0},
        lambda a: {**a, "tree_size": True},
        lambda a: {**a, "tree_size": None},
    ],
)
def test_verification_returns_false_instead_of_raising_on_malformed_arguments(mangle):
    args = {
        "leaf_hash": LEAVES[1],
        "index": 1,
        "tree_size": 5,
        "proof": merkle.inclusion_proof(1, LEAVES[:5]),
        "root": ROOTS[5],
    }
    assert merkle.verify_inclusion(**args)
    assert merkle.verify_inclusion(**mangle(args)) is False
    consistency = {
        "old_size": 3,
        "new_size": 5,
        "old_root": ROOTS[3],
        "new_root": ROOTS[5],
        "proof": merkle.consistency_proof(3, LEAVES[:5]),
    }
    assert merkle.verify_consistency(**consistency)
    renamed = {"leaf_hash": "old_root", "root": "new_root", "index": "old_size"}
    renamed |= {"tree_size": "new_size", "proof": "proof"}
    broken = {renamed[k]: v for k, v in mangle(args).items() if v is not args[k]}
    assert merkle.verify_consistency(**(consistency | broken)) is False


def test_verification_accepts_memoryviews_as_the_database_returns_them():
    proof = [memoryview(p) for p in merkle.inclusion_proof(2, LEAVES[:6])]
    assert merkle.verify_inclusion(memoryview(LEAVES[2]), 2, 6, proof, memoryview(ROOTS[6]))


# ---------------------------------------------------------------------------- TreeBuilder


def test_the_builder_root_equals_the_tree_root_at_every_size():
    builder = merkle.TreeBuilder()
    assert builder.size == 0
    for n in range(1, MAX_SIZE + 1):
        builder.append(LEAVES[n - 1])
        assert builder.size == n
        assert builder.root() == ROOTS[n], n


def test_the_builder_emits_every_complete_subtree_once_with_its_true_hash():
    builder = merkle.TreeBuilder()
    seen: set[tuple[int, int]] = set()
    for position, leaf in enumerate(LEAVES):
        emitted = builder.append(leaf)
        assert emitted[0] == (0, position, leaf)
        assert [level for level, _, _ in emitted] == list(range(len(emitted)))
        for level, index, h in emitted:
            start, end = index << level, (index + 1) << level
            assert end == position + 1, "a node is emitted when its last leaf arrives"
            assert h == reference_mth(LEAVES[start:end]), (level, index)
            seen.add((level, index))
    expected = {
        (level, index)
        for level in range(MAX_SIZE.bit_length())
        for index in range(MAX_SIZE >> level)
    }
    assert seen == expected


def test_decompose_lists_the_complete_subtrees_of_a_size_largest_first():
    assert merkle.decompose(0) == []
    assert merkle.decompose(1) == [(0, 0)]
    assert merkle.decompose(8) == [(3, 0)]
    assert merkle.decompose(13) == [(3, 0), (2, 2), (0, 12)]
    for n in range(MAX_SIZE + 1):
        ranges = [(i << lv, (i + 1) << lv) for lv, i in merkle.decompose(n)]
        assert [s for s, _ in ranges] == [0, *[e for _, e in ranges]][: len(ranges)]
        assert (ranges[-1][1] if ranges else 0) == n
        assert all(merkle.is_aligned(s, e) for s, e in ranges)


def test_a_resumed_builder_continues_exactly_where_the_original_stopped():
    for n in range(MAX_SIZE):
        nodes = stored_nodes(n)
        stack = [nodes[part] for part in merkle.decompose(n)]
        resumed = merkle.TreeBuilder.resume(n, stack)
        assert resumed.size == n
        assert resumed.root() == ROOTS[n]
        original = merkle.TreeBuilder()
        for leaf in LEAVES[:n]:
            original.append(leaf)
        assert original.frontier == stack
        for leaf in LEAVES[n : n + 20]:
            assert resumed.append(leaf) == original.append(leaf)
            assert resumed.root() == original.root() == ROOTS[resumed.size]


def test_resume_refuses_a_stack_that_does_not_fit_the_size():
    with pytest.raises(ValueError, match="complete subtrees"):
        merkle.TreeBuilder.resume(3, [LEAVES[0]])
    with pytest.raises(ValueError, match="32-byte"):
        merkle.TreeBuilder.resume(1, [b"short"])
    with pytest.raises(ValueError, match="non-negative"):
        merkle.TreeBuilder.resume(-1, [])


def test_add_builds_the_same_tree_as_append_at_every_size():
    appended, added = merkle.TreeBuilder(), merkle.TreeBuilder()
    for n, leaf in enumerate(LEAVES, start=1):
        appended.append(leaf)
        added.add(leaf)
        assert added.size == appended.size == n
        assert added.frontier == appended.frontier, n
        assert added.root() == appended.root() == ROOTS[n], n
