"""Binary trees as attachment decisions, and the stack tape that pushdown attention reads.

A binary tree over words ``w_0 .. w_{n-1}`` is built left to right by a shift-reduce parser whose
stack holds completed constituents. Reading word ``t``, the parser pushes it and then either stops
(a pure *shift*) or *reduces* it with the ``k`` most recent constituents on the stack,
``c_m, c_{m-1}, ..., c_{m-k+1}``, merging right to left::

    (c_{m-k+1} ( ... (c_{m-1} (c_m w_t))))

The nodes formed when ``w_t`` arrives are exactly its ancestors whose rightmost word it is, so every
binary tree has one and only one such sequence of decisions. A decision is written as an
*attachment* ``a_t``:

    a_t = t                      shift
    a_t = j < t                  reduce with every stack constituent from the one whose last word
                                 is j up to the top (j is the last word of c_{m-k+1})

so the attachments allowed for word ``t`` are the last words of the constituents on the stack, and
``t`` itself. After the last word the stack holds one constituent, the whole tree.

The *stack tape* is the depth of every word read so far: the number of reduces it has taken part in.
Each reduce adds 1 to every word of the constituent it forms (the new word included), so after
``(c_m w_t)`` every word of ``c_m`` and ``w_t`` are one deeper. ``depth_matrix(a)[i, j]`` is the
depth of word ``j`` right after word ``i`` attached (``j <= i``), capped at ``cap - 1``.

The model reads ``[BOS, w_0, ..., w_{n-1}, EOS]``: model position ``p`` is word ``p - 1``. BOS is
never part of a constituent (depth 0, never an attachment). EOS closes everything: it attaches to the
last word of the leftmost constituent on the stack (after a complete tree, the whole sentence), is
forced rather than predicted, and is not scored. :func:`model_tape` gives the model's targets,
depths and allowed positions in that layout.

Worked example, ``(the (dog barks))``: ``the`` shifts (a_0 = 0), ``dog`` shifts (a_1 = 1), ``barks``
reduces with ``dog`` and then ``the`` (a_2 = 0); depths after each word: [0], [0, 0], [1, 2, 2].
``((the dog) barks)``: a = [0, 0, 1]; depths [0], [1, 1], [2, 2, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmscope.data.trees import Tree, _fold, binarize, is_binary, leaves
from lmscope.errors import LmscopeError

DEPTH_CAP = 32
"""Depths at or above this are stored as ``DEPTH_CAP - 1`` (the depth embedding table's size)."""


class Stack:
    """The parser state after reading ``n`` words: the stack's constituents as (first, last) word
    positions, bottom to top, and every word's depth."""

    __slots__ = ("starts", "ends", "depths")

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.depths: list[int] = []

    @property
    def n(self) -> int:
        """Words read so far."""
        return len(self.depths)

    def allowed(self) -> list[int]:
        """The attachments allowed for the next word, ascending: the last word of every stack
        constituent, then ``n`` (shift)."""
        return [*self.ends, self.n]

    def push(self, attach: int) -> None:
        """Read word ``n`` with attachment ``attach`` (LmscopeError when it is not allowed)."""
        t = self.n
        self.depths.append(0)
        if attach == t:
            self.starts.append(t)
            self.ends.append(t)
            return
        try:
            k = self.ends.index(attach)
        except ValueError:
            raise LmscopeError(f"attachment {attach} is not allowed for word {t}; allowed: "
                               f"{', '.join(map(str, self.allowed()))}") from None
        # merge right to left: each reduce deepens the constituent it forms, top constituent first
        depths = self.depths
        for c in range(len(self.ends) - 1, k - 1, -1):
            for w in range(self.starts[c], t + 1):
                depths[w] += 1
        start = self.starts[k]
        del self.starts[k:], self.ends[k:]
        self.starts.append(start)
        self.ends.append(t)

    def close_attachment(self) -> int:
        """The attachment that merges the next word with everything on the stack (the first allowed)."""
        return self.allowed()[0]

    def copy(self) -> Stack:
        s = Stack.__new__(Stack)
        s.starts, s.ends, s.depths = list(self.starts), list(self.ends), list(self.depths)
        return s

    def __repr__(self) -> str:
        spans = " ".join(f"[{a}..{b}]" for a, b in zip(self.starts, self.ends, strict=True))
        return f"Stack(n={self.n}, constituents={spans or '-'}, depths={self.depths})"


# --------------------------------------------------------------------------------------------------
def attachments(tree: Tree) -> list[int]:
    """The attachment of every word of a binary ``tree`` (LmscopeError when it is not binary; see
    :func:`binary_tree` for trees that need binarizing)."""
    if not is_binary(tree):
        raise LmscopeError("attachments need a binary tree (every node with two children); "
                           "binarize it first")
    # The word that ends a node (L R) reduces with L, among others: the nodes ending at the same word
    # nest, and the outermost one (visited last in post-order) has the leftmost L, which decides it.
    n = len(leaves(tree))
    out = list(range(n))
    counter = iter(range(n))

    def leaf(_w: str) -> tuple[int, int]:
        i = next(counter)
        return i, i

    def node(values: list) -> tuple[int, int]:
        (first, left_end), (_, last) = values
        out[last] = left_end
        return first, last

    _fold(tree, leaf, node)
    return out


def tree_from_attachments(words: Sequence[str], attach: Sequence[int]) -> Tree:
    """The tree built by reading ``words`` with attachments ``attach`` (the inverse of
    :func:`attachments`). Constituents left on the stack after the last word are merged as EOS merges
    them, right to left: ``(c_1 (c_2 (... c_m)))``, so every attachment sequence has a tree, and the
    tree of a sequence whose last word does not close everything is also the tree of another sequence
    (the one where the last word does). LmscopeError when an attachment is not allowed."""
    words = list(words)
    if len(words) != len(attach):
        raise LmscopeError(f"{len(words)} words but {len(attach)} attachments")
    if not words:
        raise LmscopeError("an empty sentence has no tree")
    stack = Stack()
    trees: list[Tree] = []
    for t, (w, a) in enumerate(zip(words, attach, strict=True)):
        ends_before = list(stack.ends)
        stack.push(int(a))
        node: Tree = w
        if a != t:
            k = ends_before.index(a)
            for c in range(len(trees) - 1, k - 1, -1):
                node = (trees[c], node)
            del trees[k:]
        trees.append(node)
    node = trees[-1]
    for c in reversed(trees[:-1]):
        node = (c, node)
    return node


def binary_tree(tree: Tree) -> Tree:
    """``tree`` itself when binary, else its right-branching binarization (:func:`lmscope.data.trees.binarize`)."""
    return tree if is_binary(tree) else binarize(tree)


def depth_matrix(attach: Sequence[int], cap: int = DEPTH_CAP) -> np.ndarray:
    """(n, n) int64: row ``i`` holds the depths of words ``0..i`` right after word ``i`` attached;
    zero above the diagonal; capped at ``cap - 1``."""
    n = len(attach)
    out = np.zeros((n, n), dtype=np.int64)
    stack = Stack()
    for i, a in enumerate(attach):
        stack.push(int(a))
        out[i, : i + 1] = stack.depths
    return np.minimum(out, cap - 1)


@dataclass(frozen=True)
class ModelTape:
    """A sentence's tape in the model's layout ``[BOS, w_0 .. w_{n-1}, EOS]`` (T = n + 2 positions).

    ``targets[p]`` (p = 1..n): the model position token p attaches to (``p`` = shift); -100 at BOS and
    EOS (EOS is forced to close everything). ``depth[p, q]`` (q <= p): depth of token q right after
    token p attached. ``allowed[p, q]``: may token p + 1 attach at model position q (for p < n)."""

    targets: np.ndarray
    depth: np.ndarray
    allowed: np.ndarray


def model_tape(attach: Sequence[int], cap: int = DEPTH_CAP) -> ModelTape:
    """The targets, depths and allowed positions of a sentence with attachments ``attach`` (see
    :class:`ModelTape`); the attachments are checked (LmscopeError for one that is not allowed)."""
    n = len(attach)
    T = n + 2
    targets = np.full(T, -100, dtype=np.int64)
    depth = np.zeros((T, T), dtype=np.int64)
    allowed = np.zeros((T, T), dtype=bool)
    stack = Stack()
    for p in range(T):  # row p: the state after token p (p = 0 is BOS: nothing read yet)
        if 1 <= p <= n:
            a = int(attach[p - 1])
            stack.push(a)
            targets[p] = a + 1
        elif p == n + 1:  # EOS closes everything
            stack.push(stack.close_attachment())
        depth[p, 1: p + 1] = stack.depths
        if p < n:
            allowed[p, [q + 1 for q in stack.allowed()]] = True
    return ModelTape(targets, np.minimum(depth, cap - 1), allowed)
