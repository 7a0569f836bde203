"""Trees -> attachments -> stack tape, on hand-worked trees, every tree of a few words, and suite trees."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmscope.data.suites import make_suite
from lmscope.data.trees import leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.pushdown.tape import (
    Stack,
    attachments,
    binary_tree,
    depth_matrix,
    model_tape,
    tree_from_attachments,
)

# tree, attachments, depths after the last word (worked by hand from the module docstring's rules)
HAND = [
    ("(the (dog barks))", [0, 1, 0], [1, 2, 2]),
    ("((the dog) barks)", [0, 0, 1], [2, 2, 1]),
    ("((a b) (c d))", [0, 0, 2, 1], [2, 2, 2, 2]),
    ("(a (b (c d)))", [0, 1, 2, 0], [1, 2, 3, 3]),
    ("(((a b) c) d)", [0, 0, 1, 2], [3, 3, 2, 1]),
    ("((a b) (c (d e)))", [0, 0, 2, 3, 1], [2, 2, 2, 3, 3]),
    ("(((a b) c) (d (e f)))", [0, 0, 1, 3, 4, 2], [3, 3, 2, 2, 3, 3]),
]


@pytest.mark.parametrize("text,attach,last_depths", HAND)
def test_hand_worked_trees(text, attach, last_depths):
    tree = parse_bracketed(text, labeled=False)
    assert attachments(tree) == attach
    assert depth_matrix(attach)[-1].tolist() == last_depths
    assert to_bracketed(tree_from_attachments(leaves(tree), attach)) == text


def test_depth_rows_of_a_worked_example():
    # (the (dog barks)): the shifts, dog shifts, barks reduces with dog then the
    assert depth_matrix([0, 1, 0]).tolist() == [[0, 0, 0], [0, 0, 0], [1, 2, 2]]
    assert depth_matrix([0, 1, 0], cap=2).tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1]]


def _catalan(n: int) -> int:
    """The n-th Catalan number: binary trees with n + 1 leaves."""
    return 1 if n <= 1 else sum(_catalan(i) * _catalan(n - 1 - i) for i in range(n))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_complete_sequences_are_exactly_the_binary_trees(n):
    """Enumerating every allowed attachment sequence: those ending with one constituent are in
    one-to-one correspondence with the binary trees over n words (Catalan(n - 1) of them)."""
    words = [f"w{i}" for i in range(n)]

    def sequences(stack, prefix):
        if stack.n == n:
            yield prefix, stack
            return
        for a in stack.allowed():
            s = stack.copy()
            s.push(a)
            yield from sequences(s, [*prefix, a])

    complete = [(seq, s) for seq, s in sequences(Stack(), []) if len(s.ends) == 1]
    trees = {tree_from_attachments(words, seq) for seq, _ in complete}
    assert len(complete) == len(trees) == _catalan(n - 1)
    for seq, _ in complete:
        assert attachments(tree_from_attachments(words, seq)) == seq


def test_disallowed_attachment_and_nonbinary_tree_are_refused():
    s = Stack()
    s.push(0)
    s.push(1)
    with pytest.raises(LmscopeError, match="not allowed"):
        s.push(5)
    with pytest.raises(LmscopeError, match="binary"):
        attachments(("a", "b", "c"))
    assert attachments(binary_tree(("a", "b", "c"))) == [0, 1, 0]
    with pytest.raises(LmscopeError):
        tree_from_attachments(["a", "b"], [0, 3])


def test_open_stack_is_closed_like_eos():
    # all shifts: EOS closes everything right to left
    assert tree_from_attachments(list("abc"), [0, 1, 2]) == ("a", ("b", "c"))


def test_model_tape_layout():
    mt = model_tape([0, 1, 0])  # (the (dog barks)); tokens BOS the dog barks EOS
    assert mt.targets.tolist() == [-100, 1, 2, 1, -100]
    assert mt.depth[3].tolist() == [0, 1, 2, 2, 0]
    assert mt.depth[4].tolist() == [0, 2, 3, 3, 1]  # EOS closed the whole sentence
    assert np.triu(mt.depth, 1).sum() == 0
    assert mt.allowed[0].tolist() == [False, True, False, False, False]  # first word: shift only
    assert mt.allowed[2].tolist() == [False, True, True, True, False]    # after "dog": the, dog, shift
    assert not mt.allowed[3:].any()
    for p in range(1, 4):  # every gold target is allowed by the row before it
        assert mt.allowed[p - 1, mt.targets[p]]


@pytest.mark.parametrize("suite", ["question-formation", "tense-inflection", "dyck", "arith"])
def test_round_trip_on_suite_trees(suite):
    rows = [r for r in make_suite(suite, 100, 20, 20, seed=0) if r.get("tree")]
    assert rows
    for r in rows:
        tree = binary_tree(parse_bracketed(r["tree"], labeled=False))
        words = leaves(tree)
        a = attachments(tree)
        assert tree_from_attachments(words, a) == tree
        mt = model_tape(a)
        assert all(mt.allowed[p - 1, mt.targets[p]] for p in range(1, len(words) + 1))


def test_stack_copy_is_independent():
    s = Stack()
    s.push(0)
    c = s.copy()
    c.push(0)
    assert s.n == 1 and c.n == 2 and s.depths == [0] and c.depths == [1, 1]
    assert list(itertools.chain(c.allowed())) == [1, 2]
