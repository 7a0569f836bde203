"""Unlabeled constituency trees over words: parsing, printing, spans, baseline trees and parse F1.

A tree is either a leaf, the word itself (a ``str``), or an internal node, a ``tuple`` of two or
more subtrees. Trees are immutable and hashable, so they can be set members and dict keys::

    ("the", "dog")                      # (the dog)
    (("the", "dog"), "barks")           # ((the dog) barks)

Word positions are 0-based; a span ``(i, j)`` covers the words ``i..j`` inclusive.

Bracketed strings are read in two styles:

* unlabeled: ``((the dog) barks)`` (every atom is a word);
* labeled, Penn-Treebank style: ``(S (NP (DT the) (NN dog)) (VP (VBZ barks)))``. Labels are
  dropped, a preterminal ``(NN dog)`` becomes the leaf ``dog``, empty elements ``(-NONE- *T*-1)``
  are removed (with any node left without words), and the outer label-less wrapper of treebank
  files, ``( (S ...) )``, is accepted.

The words ``(`` and ``)`` (brackets of Dyck strings and arithmetic expressions) are written
``-LRB-`` and ``-RRB-`` in bracketed strings, as in the Penn Treebank, and read back as ``(`` and
``)``; no other word may contain a parenthesis or white space.

Both styles collapse unary nodes: a node with a single child is that child, so ``((dog))`` is
``dog``. The two styles cannot always be told apart (``(a (b c))`` is a valid labeled tree whose
only word is ``c``), so :func:`parse_bracketed` guesses only when asked to (``labeled=None``, the
default): a string is read as labeled when it has the labeled shape (every bracket opens with a
label, followed either by exactly one word or by brackets only), no label has a lower-case letter
(``S``, ``NP-SBJ``, ``PRP$``, ``-LRB-``, ``,``) and at least one label has a capital letter (so trees
over brackets, digits or operators are never mistaken for labeled ones); otherwise it is unlabeled.
Pass ``labeled=True`` or ``labeled=False`` to decide yourself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from lmscope.errors import LmscopeError

Tree = Union[str, tuple]  # noqa: UP007 - a runtime alias readable on Python 3.10
"""A word (leaf) or a tuple of at least two subtrees (internal node)."""

Span = tuple[int, int]

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_EMPTY_ELEMENT = "-NONE-"
_ESCAPE = {"(": "-LRB-", ")": "-RRB-"}
_UNESCAPE = {v: k for k, v in _ESCAPE.items()}


def _check_word(w) -> str:
    if not isinstance(w, str) or not w or (w not in _ESCAPE and any(ch.isspace() or ch in "()" for ch in w)):
        raise LmscopeError(f"not a word: {w!r} (words are non-empty strings without spaces or parentheses, "
                           "or a lone '(' or ')')")
    return w


# ----------------------------------------------------------------------------------------- basics
def _fold(tree: Tree, on_leaf: Callable[[str], Any], on_node: Callable[[list], Any]) -> Any:
    """Post-order evaluation without recursion (left-branching trees of long sentences are deep)."""
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    out: list[Any] = []
    while stack:
        t, expanded = stack.pop()
        if isinstance(t, str):
            out.append(on_leaf(t))
        elif expanded:
            k = len(t)
            values = out[len(out) - k:]
            del out[len(out) - k:]
            out.append(on_node(values))
        else:
            if not isinstance(t, tuple) or not t:
                raise LmscopeError(f"not a tree: {t!r} (a tree is a word or a non-empty tuple of trees)")
            stack.append((t, True))
            stack.extend((c, False) for c in reversed(t))
    return out[0]


def leaves(tree: Tree) -> list[str]:
    """The words of ``tree``, left to right."""
    out: list[str] = []
    _fold(tree, out.append, lambda values: None)
    return out


def to_bracketed(tree: Tree) -> str:
    """The unlabeled bracketed string, e.g. ``((the dog) barks)``; a leaf alone is just the word.

    The words ``(`` and ``)`` are written ``-LRB-`` and ``-RRB-``.
    """
    return _fold(tree, lambda w: _ESCAPE.get(_check_word(w), w), lambda values: "(" + " ".join(values) + ")")


def binarize(tree: Tree) -> Tree:
    """Every internal node with exactly two children.

    Unary nodes are collapsed into their child; a node with children ``c1 .. cm`` (m > 2) becomes
    the right-branching ``(c1 (c2 (... (cm-1 cm))))``.
    """

    def node(children: list) -> Tree:
        if len(children) == 1:
            return children[0]
        out = children[-1]
        for c in reversed(children[:-1]):
            out = (c, out)
        return out

    return _fold(tree, lambda w: w, node)


def is_binary(tree: Tree) -> bool:
    """True when every internal node has exactly two children."""
    return _fold(tree, lambda w: True, lambda values: len(values) == 2 and all(values))


def spans(tree: Tree) -> set[Span]:
    """The ``(i, j)`` word spans (inclusive) of the internal nodes covering at least two words.

    The whole sentence is included; single words are not. These are the brackets of unlabeled
    parsing F1.
    """
    out: set[Span] = set()
    counter = iter(range(1 << 62))

    def leaf(_: str) -> Span:
        i = next(counter)
        return (i, i)

    def node(values: list[Span]) -> Span:
        span = (values[0][0], values[-1][1])
        if span[1] > span[0]:
            out.add(span)
        return span

    _fold(tree, leaf, node)
    return out


# ----------------------------------------------------------------------------------------- parsing
def _label_like(atom: str) -> bool:
    return not any(ch.islower() for ch in atom)


class _Node:
    """A closed bracket while parsing: its unlabeled reading and its labeled reading.

    ``labeled`` is None when the bracket does not have the labeled shape; ``()`` when it has the
    shape but holds only empty elements. ``wrapper`` marks a label-less bracket around one labeled
    bracket, allowed only outermost. ``labels_ok`` is False when some label has a lower-case letter;
    ``capital`` is True when some label has a capital letter.
    """

    __slots__ = ("unlabeled", "labeled", "wrapper", "labels_ok", "capital")

    def __init__(self, unlabeled: Tree, labeled: Tree | None, wrapper: bool, labels_ok: bool, capital: bool):
        self.unlabeled, self.labeled, self.wrapper = unlabeled, labeled, wrapper
        self.labels_ok, self.capital = labels_ok, capital


def _collapse(children: list) -> Tree:
    return children[0] if len(children) == 1 else tuple(children)


def _close(items: list) -> _Node:
    unlabeled = _collapse([i.unlabeled if isinstance(i, _Node) else i for i in items])
    subnodes = [i for i in items if isinstance(i, _Node)]
    labels_ok = all(n.labels_ok for n in subnodes)
    capital = any(n.capital for n in subnodes)
    first, rest = items[0], items[1:]
    labeled: Tree | None = None
    wrapper = False
    if isinstance(first, str):
        labels_ok = labels_ok and _label_like(first)
        capital = capital or any(ch.isupper() for ch in first)
        if len(rest) == 1 and isinstance(rest[0], str):  # preterminal (TAG word)
            labeled = () if first == _EMPTY_ELEMENT else rest[0]
        elif rest and all(isinstance(i, _Node) and i.labeled is not None and not i.wrapper for i in rest):
            kept = [i.labeled for i in rest if i.labeled != ()]
            labeled = _collapse(kept) if kept else ()
    elif len(items) == 1 and first.labeled is not None and not first.wrapper:
        labeled, wrapper = first.labeled, True
    return _Node(unlabeled, labeled, wrapper, labels_ok, capital)


def parse_bracketed(text: str, labeled: bool | None = None) -> Tree:
    """Read one bracketed tree (unlabeled or Penn-Treebank style, see the module docstring).

    ``labeled``: True reads labels and preterminals, False reads every atom as a word, None (the
    default) decides from the string. A bare word is a one-word tree. Unary nodes are collapsed.
    Raises :class:`LmscopeError` for unbalanced parentheses, an empty node ``()``, text after the
    tree, an empty string, or (``labeled=True``) a string without the labeled shape.
    """
    if not isinstance(text, str):
        raise LmscopeError(f"expected a bracketed tree string, got {type(text).__name__}")
    stack: list[tuple[list, int]] = []
    root: _Node | str | None = None
    for m in _TOKEN.finditer(text):
        tok, col = m.group(), m.start() + 1
        if tok == ")" and not stack:
            raise LmscopeError(f"unbalanced parentheses: ')' at character {col} closes nothing")
        if root is not None:
            raise LmscopeError(f"trailing text after the tree at character {col}: {text[m.start():].strip()!r}")
        if tok == "(":
            stack.append(([], col))
        elif tok == ")":
            items, start = stack.pop()
            if not items:
                raise LmscopeError(f"empty node '()' at character {start}")
            node = _close(items)
            if stack:
                stack[-1][0].append(node)
            else:
                root = node
        elif stack:
            stack[-1][0].append(_UNESCAPE.get(tok, tok))
        else:
            root = _UNESCAPE.get(tok, tok)
    if stack:
        raise LmscopeError(f"unbalanced parentheses: {len(stack)} '(' not closed (the first at character "
                           f"{stack[0][1]})")
    if root is None:
        raise LmscopeError("empty tree string")
    if isinstance(root, str):
        return root
    if labeled is False:
        return root.unlabeled
    has_shape = root.labeled is not None
    if labeled is True and not has_shape:
        raise LmscopeError("not a labeled (Penn-Treebank style) tree: every bracket must open with a label "
                           "followed by one word or by brackets only")
    if labeled is True or (has_shape and root.labels_ok and root.capital):
        if root.labeled == ():
            raise LmscopeError("the tree has no words (only empty elements)")
        return root.labeled
    return root.unlabeled


def read_tree_file(path: str | os.PathLike, labeled: bool | None = None) -> list[Tree]:
    """One bracketed tree per line (blank lines skipped); errors name the line: ``path:LINE: ...``."""
    from lmscope._io import read_lines_numbered

    path = Path(path)
    trees = []
    for lineno, line in read_lines_numbered(path):
        if not line.strip():
            continue
        try:
            trees.append(parse_bracketed(line, labeled=labeled))
        except LmscopeError as e:
            raise LmscopeError(f"{path}:{lineno}: {e}") from None
    if not trees:
        raise LmscopeError(f"{path}: the file holds no trees")
    return trees


# ----------------------------------------------------------------------------------------- baselines
def _words(words: Sequence[str] | str) -> list[str]:
    ws = words.split() if isinstance(words, str) else list(words)
    if not ws:
        raise LmscopeError("a tree needs at least one word")
    for w in ws:
        _check_word(w)
    return ws


def left_branching(words: Sequence[str] | str) -> Tree:
    """``(((w0 w1) w2) w3)``."""
    ws = _words(words)
    tree: Tree = ws[0]
    for w in ws[1:]:
        tree = (tree, w)
    return tree


def right_branching(words: Sequence[str] | str) -> Tree:
    """``(w0 (w1 (w2 w3)))``."""
    ws = _words(words)
    tree: Tree = ws[-1]
    for w in reversed(ws[:-1]):
        tree = (w, tree)
    return tree


def _split_tree(ws: list[str], choose: Callable[[int], int]) -> Tree:
    """Build a binary tree top-down; ``choose(m)`` gives the size (1..m-1) of the left part of m words."""

    def build(lo: int, hi: int) -> Tree:  # words lo..hi-1
        if hi - lo == 1:
            return ws[lo]
        k = lo + choose(hi - lo)
        return (build(lo, k), build(k, hi))

    return build(0, len(ws))


def balanced(words: Sequence[str] | str) -> Tree:
    """Split at the middle at every node; with an odd count the left half gets the extra word."""
    return _split_tree(_words(words), lambda m: (m + 1) // 2)


def random_tree(words: Sequence[str] | str, rng: np.random.Generator | int | None = None) -> Tree:
    """A random binary tree: at every node the split point is uniform over the m - 1 choices.

    ``rng`` is a numpy Generator (or a seed for one); nodes are split in pre-order, left first.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return _split_tree(_words(words), lambda m: int(gen.integers(1, m)))


BASELINES: dict[str, Callable[..., Tree]] = {
    "left": left_branching,
    "right": right_branching,
    "balanced": balanced,
    "random": random_tree,
}

BASELINE_NAMES = ("left", "right", "balanced", "random")


# ----------------------------------------------------------------------------------------- parse F1
def bracket_match(pred: Tree, gold: Tree) -> tuple[int, int, int]:
    """(matched, predicted, gold) bracket counts; brackets are :func:`spans`."""
    p, g = spans(pred), spans(gold)
    return len(p & g), len(p), len(g)


def prf(counts: Sequence[tuple[int, int, int]]) -> dict:
    """Pooled precision, recall and F1 over ``(matched, predicted, gold)`` counts.

    With no brackets at all (only one-word sentences) the scores are None.
    """
    m = sum(c[0] for c in counts)
    p = sum(c[1] for c in counts)
    g = sum(c[2] for c in counts)
    precision = m / p if p else None
    recall = m / g if g else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "matched": m, "predicted": p, "gold": g}


def baseline_tree(name: str, words: Sequence[str], rng: np.random.Generator | int | None = None) -> Tree:
    """A baseline tree over ``words``: left- or right-branching, balanced, or random (seeded)."""
    if name == "left":
        return left_branching(list(words))
    if name == "right":
        return right_branching(list(words))
    if name == "balanced":
        return balanced(list(words))
    if name == "random":
        return random_tree(list(words), rng)
    raise LmscopeError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINE_NAMES)}")


def parse_f1(pred_trees: Sequence[Tree], gold_trees: Sequence[Tree]) -> dict:
    """Unlabeled parsing F1 of ``pred_trees`` against ``gold_trees`` (pairwise, same words), pooled over
    the corpus as :func:`prf` pools it: ``{"precision", "recall", "f1", "matched", "predicted", "gold"}``.

    LmscopeError when the lists differ in length or a pair's words differ.
    """
    pred_trees, gold_trees = list(pred_trees), list(gold_trees)
    if len(pred_trees) != len(gold_trees):
        raise LmscopeError(f"{len(pred_trees)} predicted trees but {len(gold_trees)} gold trees")
    counts = []
    for i, (p, g) in enumerate(zip(pred_trees, gold_trees, strict=True)):
        if leaves(p) != leaves(g):
            raise LmscopeError(f"tree {i + 1}: the predicted tree's words {' '.join(leaves(p))!r} differ from "
                               f"the gold tree's {' '.join(leaves(g))!r}")
        counts.append(bracket_match(p, g))
    return prf(counts)
