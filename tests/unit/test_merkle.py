"""The RFC 9162 Merkle tree: published RFC 6962 test vectors, and proofs that
verify for every leaf and every prefix and fail for anything altered."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from events.merkle import (
    EMPTY_ROOT,
    append_leaves,
    consistency_proof,
    consistency_spans,
    frontier_nodes,
    frontier_root,
    inclusion_proof,
    inclusion_spans,
    leaf_hash,
    root,
    span_hash,
    verify_consistency,
    verify_inclusion,
)

# The test leaves of RFC 6962's reference implementation (certificate-transparency),
# and the tree heads of their first 1..8.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
          "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_the_tree_heads_of_the_published_vectors() -> None:
    assert root([]) == EMPTY_ROOT
    assert [root(LEAVES[:n]).hex() for n in range(1, 9)] == ROOTS


def test_an_inclusion_proof_of_the_published_vectors() -> None:
    # Leaf 0 of 8: its sibling, then the heads of leaves 2..3 and 4..7.
    proof = inclusion_proof(LEAVES, 0)
    assert proof == [leaf_hash(LEAVES[1]), root(LEAVES[2:4]), root(LEAVES[4:8])]
    assert verify_inclusion(leaf_hash(LEAVES[0]), 0, 8, proof, bytes.fromhex(ROOTS[7]))


trees = st.lists(st.binary(max_size=8), min_size=1, max_size=40)


@given(leaves=trees, data=st.data())
def test_every_leaf_has_a_proof_that_verifies_and_no_other_leaf_passes_it(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    head = root(leaves)
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaf_hash(leaves[index]), index, len(leaves), proof, head)
    assert not verify_inclusion(leaf_hash(leaves[index] + b"x"), index, len(leaves), proof, head)
    if proof:
        bent = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        assert not verify_inclusion(leaf_hash(leaves[index]), index, len(leaves), bent, head)


@given(leaves=trees, data=st.data())
def test_every_prefix_is_proved_consistent_and_a_rewritten_one_is_not(
    leaves: list[bytes], data: st.DataObject
) -> None:
    old = data.draw(st.integers(1, len(leaves)))
    proof = consistency_proof(leaves, old)
    old_root, new_root = root(leaves[:old]), root(leaves)
    assert verify_consistency(old, len(leaves), old_root, new_root, proof)
    rewritten = root([*leaves[: old - 1], leaves[old - 1] + b"x"])
    assert not verify_consistency(old, len(leaves), rewritten, new_root, proof)
    assert not verify_consistency(old, len(leaves), old_root, EMPTY_ROOT, proof)


# --- the tree kept as stored nodes ---------------------------------------------------


def stored_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every node a database would hold, grown leaf by leaf as the consumer does."""
    frontier: dict[int, bytes] = {}
    made = append_leaves(0, frontier, leaves)
    return {(level, index): head for level, index, head in made}


@given(leaves=trees, cut=st.integers(min_value=0))
def test_a_tree_grown_in_batches_has_the_heads_of_the_whole(leaves: list[bytes], cut: int) -> None:
    cut %= len(leaves)
    frontier: dict[int, bytes] = {}
    append_leaves(0, frontier, leaves[:cut])
    assert frontier_root(cut, frontier) == root(leaves[:cut])
    made = append_leaves(cut, frontier, leaves[cut:])
    assert frontier_root(len(leaves), frontier) == root(leaves)
    nodes = stored_nodes(leaves)
    assert {(lv, ix): h for lv, ix, h in made}.items() <= nodes.items()
    assert {k: nodes[k] for k in frontier_nodes(len(leaves))} == {
        (lv, (len(leaves) >> lv) - 1): h for lv, h in frontier.items()
    }


@given(leaves=trees, data=st.data())
def test_proofs_from_stored_nodes_are_the_proofs_of_the_tree(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    nodes = stored_nodes(leaves)
    assert span_hash((0, size), nodes) == root(leaves[:size])
    path = [span_hash(s, nodes) for s in inclusion_spans(index, size)]
    assert path == inclusion_proof(leaves[:size], index)
    proof = [span_hash(s, nodes) for s in consistency_spans(old, size)]
    assert proof == consistency_proof(leaves[:size], old)


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit inverted."""
    bit %= len(data) * 8
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@given(leaves=trees, data=st.data())
def test_any_one_bit_change_of_an_inclusion_proof_leaf_or_root_is_rejected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    head, leaf = root(leaves), leaf_hash(leaves[index])
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaf, index, size, proof, head)
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(flip(leaf, bit), index, size, proof, head)
    assert not verify_inclusion(leaf, index, size, proof, flip(head, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not verify_inclusion(leaf, index, size, changed, head)


@given(leaves=trees, data=st.data())
def test_any_one_bit_change_of_a_consistency_proof_or_either_root_is_rejected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    new = len(leaves)
    old = data.draw(st.integers(1, new))
    old_head, new_head = root(leaves[:old]), root(leaves)
    proof = consistency_proof(leaves, old)
    assert verify_consistency(old, new, old_head, new_head, proof)
    bit = data.draw(st.integers(0, 255))
    assert not verify_consistency(old, new, flip(old_head, bit), new_head, proof)
    assert not verify_consistency(old, new, old_head, flip(new_head, bit), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        changed = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not verify_consistency(old, new, old_head, new_head, changed)
