"""Synthetic suites with gold trees: the registry, writing a suite folder, and reading suite files.

Every suite gives rows ``{"text", "target", "tree", "split"}`` (grammar suites add ``"task"``, the
task marker) with three splits: ``train``, ``val`` (the same distribution as ``train``) and a
generalization split, ``gen`` (``ood`` for Dyck, or ``deep`` when split by depth), built so that a
provable rule separates it from ``train`` (see :func:`suite_info` and each module's docstring).
``tree`` is an unlabeled, binary, bracketed tree (:mod:`lmscope.data.trees`) whose leaves are the words of ``text`` (all of them, or, for
the grammar suites, those before the final ``. MARKER``). The grammar suites' rows also have
``"target_tree"``, the output sentence's tree over the words of ``target`` before its final ``?``/``.``
(:mod:`lmscope.data.grammars`).

Generation is deterministic: one numpy stream per (seed, split), so the same options and seed give
the same rows. Texts are distinct within and across splits (``train`` is drawn first, then ``val``,
then the generalization split), so a later split skips texts an earlier one drew: its rows can
change with the earlier splits' sizes when their distributions overlap (a generalization split
disjoint by construction, as in the grammar suites, does not); where a
suite has few short strings (e.g. the 200 arithmetic expressions of depth 1) ``train`` uses them up.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmscope._io import read_jsonl_numbered, write_json, write_jsonl
from lmscope.data import arith as _arith
from lmscope.data import dyck as _dyck
from lmscope.data import grammars as _grammars
from lmscope.data.trees import leaves, parse_bracketed
from lmscope.errors import LmscopeError


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    splits: tuple[str, str, str]
    generate: Callable[..., list[dict]]
    rules: Callable[..., dict[str, str]]
    row_format: str

    @property
    def options(self) -> dict[str, Any]:
        """The suite's options and their defaults."""
        params = list(inspect.signature(self.generate).parameters.values())[4:]
        return {p.name: p.default for p in params}


def _dyck_rules(k=2, max_depth=10, max_len=100, heldout_fraction=0.1, heldout_min_depth=None,
                train_max_depth=None) -> dict[str, str]:
    if train_max_depth is not None:
        return {"train": f"nesting depth <= {train_max_depth}; lengths 2..{max_len}",
                "val": _dyck.DEPTH_RULES["val"],
                "deep": f"nesting depth {train_max_depth + 1}..{max_depth}, deeper than every train string; "
                        f"lengths 2..{max_len}"}
    min_depth = min(3, max_depth) if heldout_min_depth is None else heldout_min_depth
    held = (f"held out: the stack configurations of depth >= {min_depth} whose SHA-256 fraction is below "
            f"{heldout_fraction}; all splits: lengths 2..{max_len}, depth <= {max_depth}")
    rules = dict(_dyck.DYCK_RULES)
    rules["train"] += f" ({held})"
    return rules


SUITES: dict[str, Suite] = {
    "question-formation": Suite(
        "question-formation",
        "declarative -> yes/no question by moving the main auxiliary (McCoy et al. 2020); gen: relative "
        "clause on the subject", ("train", "val", "gen"), _grammars.question_formation,
        lambda identity_fraction=0.5: dict(_grammars.QF_RULES),
        "text '<declarative> . quest' -> target '<question> ?' (task 'quest'), or identity "
        "'<declarative> . decl' -> '<declarative> .' (task 'decl'); tree: the declarative's words; "
        "target_tree: the output's words before its final '?' / '.'"),
    "tense-inflection": Suite(
        "tense-inflection",
        "past -> present with subject-verb agreement (McCoy et al. 2020); gen: agreement attractor "
        "between subject and verb", ("train", "val", "gen"), _grammars.tense_inflection,
        lambda identity_fraction=0.5: dict(_grammars.TENSE_RULES),
        "text '<past declarative> . PRESENT' -> target '<present declarative> .' (task 'PRESENT'), or "
        "identity '<past> . PAST' -> '<past> .' (task 'PAST'); tree: the past declarative's words; "
        "target_tree: the output's words before its final '.'"),
    "dyck": Suite(
        "dyck",
        "bounded-depth Dyck-k strings with the closing bracket expected at each position; ood: unseen "
        "stack configurations (or, with train_max_depth, deep: deeper nesting than train)", ("train", "val", "ood"), _dyck.dyck, _dyck_rules,
        "text: the string's tokens; target: per token, the closing bracket matching the stack top after "
        "it ('_' when the stack is empty); tree: all tokens"),
    "arith": Suite(
        "arith",
        "fully parenthesized + and * over digits, value mod 10; gen: deeper nesting (or a held-out "
        "composition)", ("train", "val", "gen"), _arith.arith, _arith.arith_rules,
        "text: the expression's tokens; target: its value modulo `modulus`; tree: all tokens"),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise LmscopeError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    return SUITES[name]


def _check_options(suite: Suite, options: dict) -> dict[str, Any]:
    known = suite.options
    for key in options:
        if key not in known:
            listed = ", ".join(known) if known else "none"
            raise LmscopeError(f"suite {suite.name!r} has no option {key!r} (its options: {listed})")
    return {**known, **options}


def make_suite(name: str, n_train: int, n_val: int, n_gen: int, seed: int = 0, **options) -> list[dict]:
    """The rows of suite ``name``: ``n_train`` train, ``n_val`` val and ``n_gen`` gen (or ood) rows.

    ``options`` are the suite's own (e.g. ``k`` and ``max_depth`` for ``dyck``; see
    ``SUITES[name].options``). Unknown names, unknown options and bad values raise
    :class:`LmscopeError`.
    """
    suite = get_suite(name)
    return suite.generate(n_train, n_val, n_gen, seed, **_check_options(suite, options))


def suite_splits(name: str, **options) -> tuple[str, str, str]:
    """The split names of suite ``name`` under ``options``: its ``splits``, except that the Dyck suite
    split by depth (``train_max_depth`` given) has ``deep`` in place of ``ood``."""
    suite = get_suite(name)
    resolved = _check_options(suite, options)
    if name == "dyck":
        return ("train", "val", _dyck.generalization_split(resolved["train_max_depth"]))
    return suite.splits


def suite_info(name: str, n_train: int, n_val: int, n_gen: int, seed: int = 0, **options) -> dict:
    """The description written to ``info.json``: suite, seed, options, counts and each split's rule."""
    suite = get_suite(name)
    resolved = _check_options(suite, options)
    if name == "dyck" and resolved["heldout_min_depth"] is None:
        resolved["heldout_min_depth"] = min(3, resolved["max_depth"])
    counts = dict(zip(suite_splits(name, **options), (n_train, n_val, n_gen)))
    return {"suite": name, "description": suite.description, "seed": seed, "options": resolved,
            "counts": counts, "rules": suite.rules(**resolved), "rows": suite.row_format,
            "files": {s: f"{s}.jsonl" for s, n in counts.items() if n}}


def write_suite(name: str, out: str | os.PathLike, n_train: int, n_val: int, n_gen: int, seed: int = 0,
                force: bool = False, command: str | None = None, **options) -> dict:
    """Write ``<split>.jsonl`` for every non-empty split and ``info.json`` into ``out``, atomically, under
    lmscope's output policy (``force`` replaces an existing folder lmscope did not write)."""
    from lmscope.outputs import check_output, output_dir

    rows = make_suite(name, n_train, n_val, n_gen, seed, **options)  # bad settings are reported first
    info = suite_info(name, n_train, n_val, n_gen, seed, **options)
    check_output(out, force=force)
    with output_dir(out, checked=True, command=command or f"lmscope data make {name}") as tmp:
        for split, file in info["files"].items():
            write_jsonl(Path(tmp) / file, [r for r in rows if r["split"] == split])
        write_json(Path(tmp) / "info.json", info)
    return info


# ------------------------------------------------------------------------------------------ reading
def tree_words(text: str) -> tuple[list[str], list[str] | None]:
    """The word lists a tree of ``text`` may cover: all words, and those before the last ``.`` (or None)."""
    words = text.split()
    if "." in words:
        last = len(words) - 1 - words[::-1].index(".")
        return words, words[:last]
    return words, None


def target_tree_words(target: str) -> tuple[list[str], list[str] | None]:
    """The word lists a ``target_tree`` may cover: all words of ``target``, and those before a final
    ``?`` or ``.`` (or None)."""
    words = target.split()
    return words, (words[:-1] if words and words[-1] in ("?", ".") else None)


def _check_tree(bracketed: str, allowed: tuple[list[str], list[str] | None], key: str, of: str, where: str) -> None:
    try:
        got = leaves(parse_bracketed(bracketed))
    except LmscopeError as e:
        raise LmscopeError(f"{where}: bad {key}: {e}") from None
    allw, before = allowed
    if got != allw and got != before:
        raise LmscopeError(f"{where}: {key} leaves {' '.join(got)!r} do not match the words "
                           f"{' '.join(before if before is not None else allw)!r} of the {of}")


def load_suite_file(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file of suite rows: ``text`` required; ``target``, ``tree``, ``target_tree``, ``split``
    optional strings.

    A ``tree`` (bracketed, unlabeled or Penn-Treebank style) must have as leaves the words of ``text``
    (all of them, or those before its last ``.``); a ``target_tree`` those of ``target`` (all of them, or
    those before a final ``?`` or ``.``). Problems raise :class:`LmscopeError` naming the
    line: ``path:LINE: ...``.
    """
    rows = []
    for lineno, row in read_jsonl_numbered(path):
        where = f"{path}:{lineno}"
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise LmscopeError(f"{where}: 'text' must be a non-empty string")
        for key in ("target", "tree", "target_tree", "split"):
            if key in row and not isinstance(row[key], str):
                raise LmscopeError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}")
        if "tree" in row:
            _check_tree(row["tree"], tree_words(text), "tree", "text", where)
        if "target_tree" in row:
            if "target" not in row:
                raise LmscopeError(f"{where}: a 'target_tree' needs a 'target'")
            _check_tree(row["target_tree"], target_tree_words(row["target"]), "target_tree", "target", where)
        rows.append(row)
    return rows


def gold_sentences(name: str, n: int, seed: int = 0, pool: int | None = None) -> tuple[list[list[str]], list]:
    """The first ``n`` validation rows of suite ``name`` as (words, gold trees), for tree projections.

    The rows come from a suite drawn with ``pool`` validation rows (default ``4 * n``).
    """
    from lmscope.data.trees import leaves, parse_bracketed

    rows = [r for r in make_suite(name, 0, pool or 4 * n, 0, seed=seed) if r["split"] == "val"][:n]
    trees = [parse_bracketed(r["tree"], labeled=False) for r in rows]
    return [leaves(t) for t in trees], trees
