"""Bundled evaluation sets of factual knowledge, for checking what a model still recalls.

Both sets are generated from the curated tables in :mod:`lmscope.data.facts` and shipped as JSONL
under ``resources/`` (regenerate them with ``python -m lmscope.data.facts``). Rows come in a fixed
order (grouped by relation); callers that need train/test splits draw them with their own seed.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources

from lmscope._io import read_jsonl
from lmscope.data.facts import FACTUAL_RECALL_FILE, TRUE_FALSE_FILE
from lmscope.errors import LmscopeError

EVAL_SETS: dict[str, str] = {
    "factual_recall": "completion prompts for well-known facts over 20+ relations (capitals, currencies, "
    "chemical symbols, authors, composers, ...): {id, relation, prompt, answer, aliases}; the gold "
    "answer (or an alias) is the natural continuation after a space",
    "true_false": "balanced true/false statements built from the same facts, false ones by swapping in "
    "another object of the same relation: {id, relation, subject, object, statement, label, choices, "
    "prompt, answer} with answer 'true' or 'false'",
}

_FILES: dict[str, str] = {"factual_recall": FACTUAL_RECALL_FILE, "true_false": TRUE_FALSE_FILE}

_REQUIRED: dict[str, dict[str, type]] = {
    "factual_recall": {"id": str, "relation": str, "prompt": str, "answer": str, "aliases": list},
    "true_false": {
        "id": str,
        "relation": str,
        "statement": str,
        "label": bool,
        "choices": list,
        "prompt": str,
        "answer": str,
    },
}


@functools.cache
def _rows(name: str) -> tuple[dict, ...]:
    filename = _FILES[name]
    ref = resources.files("lmscope.data").joinpath("resources", filename)
    with resources.as_file(ref) as path:
        rows = read_jsonl(path)
    for i, row in enumerate(rows, 1):
        for key, kind in _REQUIRED[name].items():
            if not isinstance(row.get(key), kind):  # pragma: no cover - guards the shipped files
                raise LmscopeError(f"bundled {filename}: row {i} has no valid {key!r}")
    return tuple(rows)


def load_eval_set(name: str) -> list[dict]:
    """Return the rows of the bundled evaluation set ``name`` (a key of :data:`EVAL_SETS`).

    Each call returns fresh copies, so callers may modify them.
    """
    if name not in EVAL_SETS:
        raise LmscopeError(f"unknown evaluation set {name!r}; choose from {', '.join(sorted(EVAL_SETS))}")
    return copy.deepcopy(list(_rows(name)))


def load_factual_recall() -> list[dict]:
    """Completion prompts ``{"id", "relation", "prompt", "answer", "aliases"}``, sorted by relation.

    ``prompt`` has no trailing space and ``answer`` no leading space: score ``" " + answer``
    (or any alias) as the continuation of ``prompt``.
    """
    return load_eval_set("factual_recall")


def load_true_false() -> list[dict]:
    """True/false statements, half of them true.

    Each row has ``statement``, ``label`` (bool), ``choices`` (``["true", "false"]``), ``answer``
    (``"true"`` or ``"false"``) and ``prompt`` (``"<statement> True or false? Answer:"``), plus the
    ``relation``, ``subject`` and ``object`` the statement was built from.
    """
    return load_eval_set("true_false")
