"""Whole training lines as trees and attachments: the words a pushdown model reads, and their parse.

A pushdown model is trained on whole lines, and needs a binary tree over every word of a line (the
attachments and the stack tape come from it, :mod:`lmscope.pushdown.tape`). The suites' gold trees
cover only part of a line, so a line is cut into *segments*: a tree over some of its words, or a
*closing* word that attaches as "close everything" (it merges with every constituent on the stack,
the first allowed attachment, :meth:`Stack.close_attachment`). Reading the segments left to right
gives the line's attachments; the line's tree is what they build.

Lines, per task (``row`` is a suite row, :mod:`lmscope.data.suites`):

* ``question-formation`` / ``tense-inflection``: the words of ``text`` then those of ``target``,
  exactly the words of :func:`lmscope.train.loop.suite_lines`' ``"text<TAB>target"`` line, e.g.
  ``the dog does sleep . quest does the dog sleep ?``. Segments: the declarative's ``tree``; each
  word of ``text`` after it (``.`` and the task marker ``quest`` / ``decl`` / ``PRESENT`` / ``PAST``)
  closes everything; the output's ``target_tree`` (rows without one, written before the suites had
  it, get it from the grammar: :func:`output_tree`); each word of ``target`` after it (the final
  ``?`` / ``.``) closes everything. The line's tree is therefore
  ``(((DECL .) quest) (OUT ?))``, e.g.
  ``(((((the dog) (does sleep)) .) quest) ((does ((the dog) sleep)) ?))``.
* ``dyck``: the string (``text``; the closing-bracket targets are not part of the line), with its
  gold tree :func:`lmscope.data.dyck.dyck_tree`.
* ``arith``: the expression, ``=``, then the answer: ``( 8 * 7 ) = 6``. Segments: the expression's
  tree, then ``=`` and each answer word close everything: ``((EXPR =) 6)``.
* ``trees`` (a user's bracketed file, :func:`tree_file_rows`): the tree's words, the tree binarized
  (:func:`lmscope.pushdown.tape.binary_tree`).

In general (the two grammar tasks and ``trees`` rows): ``tree`` must cover the first words of
``text`` and every later word of ``text`` closes everything; likewise ``target_tree`` and ``target``
(a target without a ``target_tree`` is all closing words). Trees are binarized when they are not
binary. Problems raise :class:`LmscopeError`, prefixed ``line N:`` when the row has a ``"line"``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lmscope.data.trees import Tree, leaves, parse_bracketed, to_bracketed
from lmscope.errors import LmscopeError
from lmscope.pushdown.tape import Stack, attachments, binary_tree

TASKS = ("question-formation", "tense-inflection", "dyck", "arith", "trees")
ARITH_EQUALS = "="
"""The word between an arithmetic expression and its answer in a line."""

_CLOSE = object()  # a closing segment's marker


def _fail(row: dict, msg: str) -> LmscopeError:
    line = row.get("line")
    return LmscopeError(f"line {line}: {msg}" if line is not None else msg)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _text(row: dict, key: str) -> list[str]:
    value = row.get(key)
    if not isinstance(value, str) or (key == "text" and not value.split()):
        raise _fail(row, f"the row needs a non-empty string {key!r}" if key == "text"
                    else f"the row needs a string {key!r}")
    return value.split()


def _tree(row: dict, key: str) -> Tree:
    value = row.get(key)
    if isinstance(value, str):
        try:
            value = parse_bracketed(value)
        except LmscopeError as e:
            raise _fail(row, f"bad {key}: {e}") from None
    if value is None:
        raise _fail(row, f"the row has no {key!r}")
    try:
        return binary_tree(value)
    except LmscopeError as e:
        raise _fail(row, f"bad {key}: {e}") from None


def output_tree(row: dict) -> Tree:
    """The output sentence's tree of a grammar row: its ``target_tree``, or, for a row without one,
    the tree the grammar gives from the declarative's ``tree`` (a question ``(AUX (SUBJECT VP))``, a
    present sentence the past tree with present verbs, an identity row its tree)."""
    from lmscope.data import grammars

    if "target_tree" in row:
        return _tree(row, "target_tree")
    tree = _tree(row, "tree")
    task = row.get("task")
    try:
        if task == "quest":
            grammars.hierarchical_question(tree)  # checks the shape (SUBJECT (AUX VP))
            subject, (aux, vp) = tree
            return (aux, (subject, vp))
        if task == "PRESENT":
            words = iter(grammars.hierarchical_agreement_present(tree))
            return _relabel(tree, words)
    except LmscopeError as e:
        raise _fail(row, str(e)) from None
    if task in ("decl", "PAST"):
        return tree
    raise _fail(row, f"the row has no 'target_tree' and its task {task!r} is not one of quest, decl, PRESENT, PAST")


def _relabel(tree: Tree, words) -> Tree:
    if isinstance(tree, str):
        return next(words)
    return tuple(_relabel(c, words) for c in tree)


def _covered(row: dict, tree: Tree, words: list[str], key: str, of: str) -> list:
    """The segments of ``words``: ``tree`` over their first words, then one closing word each."""
    got = leaves(tree)
    if got != words[:len(got)]:
        raise _fail(row, f"{key} leaves {' '.join(got)!r} are not the first words of the {of} "
                         f"{' '.join(words)!r}")
    return [tree] + [_CLOSE] * (len(words) - len(got))


def _segments(row: dict, task: str) -> tuple[list[str], list]:
    """The line's words and its segments (trees and closing markers, in order)."""
    _check_task(task)
    if not isinstance(row, dict):
        raise LmscopeError(f"a row must be a dict, got {type(row).__name__}")
    text = _text(row, "text")
    if task == "dyck":
        from lmscope.data.dyck import dyck_tree

        try:
            return text, [dyck_tree(text, _dyck_k(row, text))]
        except LmscopeError as e:
            raise _fail(row, str(e)) from None
    if task == "arith":
        target = _text(row, "target")
        return [*text, ARITH_EQUALS, *target], [*_covered(row, _tree(row, "tree"), text, "tree", "text"),
                                               *[_CLOSE] * (1 + len(target))]
    segments = _covered(row, _tree(row, "tree"), text, "tree", "text")
    target = _text(row, "target") if "target" in row or task != "trees" else []
    if target:
        if task == "trees" and "target_tree" not in row:
            segments += [_CLOSE] * len(target)
        else:
            segments += _covered(row, output_tree(row), target, "target_tree", "target")
    return [*text, *target], segments


def _dyck_k(row: dict, tokens: list[str]) -> int:
    """The number of bracket types a Dyck string needs (4 for the symbols ( [ { <, else the largest aI)."""
    numbered = [t for t in tokens if len(t) > 1 and t[0] in "ab" and t[1:].isdigit()]
    if not numbered:
        return 4
    return max(5, *(int(t[1:]) for t in numbered))


def line_words(row: dict, task: str) -> list[str]:
    """The words of the line a model trains on for ``row`` (see the module docstring)."""
    return _segments(row, task)[0]


def line_text(row: dict, task: str) -> str:
    """:func:`line_words` joined by spaces."""
    return " ".join(line_words(row, task))


def line_attachments(row: dict, task: str) -> tuple[list[str], list[int]]:
    """The line's words and every word's attachment, read segment by segment: a tree's own attachments
    (shifted to its place in the line), a closing word's "close everything"."""
    words, segments = _segments(row, task)
    stack = Stack()
    out: list[int] = []
    for seg in segments:
        if seg is _CLOSE:
            out.append(stack.close_attachment())
            stack.push(out[-1])
            continue
        offset = stack.n
        for a in attachments(seg):
            out.append(a + offset)
            stack.push(out[-1])
    return words, out


def line_tree(row: dict, task: str) -> Tree:
    """The line's binary tree (the one its attachments build): segments are stacked left to right, a
    closing word ``c`` merges everything on the stack into ``(s_1 (s_2 (... (s_m c))))``, and what is
    left at the end merges the same way, ``(s_1 (... s_m))``."""
    words, segments = _segments(row, task)
    stack: list[Tree] = []
    pos = 0
    for seg in segments:
        if seg is _CLOSE:
            node: Tree = words[pos]
            for s in reversed(stack):
                node = (s, node)
            stack = [node]
            pos += 1
        else:
            stack.append(seg)
            pos += len(leaves(seg))
    node = stack[-1]
    for s in reversed(stack[:-1]):
        node = (s, node)
    return node


# ------------------------------------------------------------------------------------------ tree files
def tree_file_rows(path: str | os.PathLike, labeled: bool | None = None) -> list[dict]:
    """Rows ``{"text", "tree", "line"}`` from a file of bracketed trees, one per line (unlabeled or
    Penn-Treebank style, :func:`lmscope.data.trees.parse_bracketed`): ``text`` is the tree's words,
    ``tree`` the binarized tree (bracketed), ``line`` the line number. Blank lines are skipped; any
    other line that is not one tree (unbalanced brackets, text after the tree, no words) raises
    :class:`LmscopeError` naming it, ``path:LINE: ...``; so does a file with no trees."""
    from lmscope._io import read_lines_numbered

    path = Path(path)
    rows = []
    for lineno, line in read_lines_numbered(path):
        if not line.strip():
            continue
        try:
            tree = binary_tree(parse_bracketed(line, labeled=labeled))
        except LmscopeError as e:
            raise LmscopeError(f"{path}:{lineno}: {e}") from None
        rows.append({"text": " ".join(leaves(tree)), "tree": to_bracketed(tree), "line": lineno})
    if not rows:
        raise LmscopeError(f"{path}: the file holds no trees")
    return rows
