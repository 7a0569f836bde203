"""Bundled evaluation sets of factual knowledge, for checking what a model still recalls.

Both sets are generated from the curated tables in :mod:`lmscope.data.facts` and shipped as JSONL
under ``resources/`` (regenerate them with ``python -m lmscope.data.facts``). Rows come in a fixed
order (grouped by relation); callers that need train/test splits draw them with their own seed.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lmscope._io import read_jsonl, read_jsonl_numbered
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


# ------------------------------------------------------------------------------------------------
# Evaluation tasks: one JSONL schema, three kinds
# ------------------------------------------------------------------------------------------------
EVAL_KINDS: dict[str, str] = {
    "recall": '{"prompt": str, "answer": str, "aliases": [str, ...] (optional)}: the answer (or an alias), '
    "after a space, is the continuation of the prompt",
    "choice": '{"prompt": str, "choices": [str, str, ...], "answer": one of the choices}: the choices are '
    "compared by the log-probability of each as the continuation of the prompt",
    "text": '{"text": str}: plain text, scored by its log-likelihood (perplexity)',
}
EVAL_SCHEMA_DOC = "one JSON object per line, every line of the same kind: " + "; ".join(
    f"{k}: {v}" for k, v in EVAL_KINDS.items())


def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """The seeded choice of ``n`` of ``total`` items that every ``--limit N`` makes: distinct indices in
    increasing order (so a sample keeps the file's order); all of them when ``n >= total``."""
    if n >= total:
        return list(range(total))
    import numpy as np

    return sorted(np.random.default_rng(seed).choice(total, n, replace=False).tolist())


@dataclass
class EvalTask:
    """Rows of one kind (``recall``, ``choice`` or ``text``), normalized to the documented schema."""

    name: str
    kind: str
    rows: list[dict]

    def __len__(self) -> int:
        return len(self.rows)

    def fingerprint(self) -> str:
        """A hash of the rows (for caches of results on this task)."""
        blob = json.dumps([self.kind, self.rows], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def subset(self, indices) -> EvalTask:
        return EvalTask(self.name, self.kind, [self.rows[i] for i in indices])

    def sample(self, n: int | None, seed: int, minimum: int = 1) -> EvalTask:
        """A seeded sample of ``n`` examples in their original order (all of them when ``n`` is None
        or not smaller than the task); ``n`` below ``minimum`` is an error."""
        if n is None:
            return self
        if n < minimum:
            raise LmscopeError(f"--limit must be at least {minimum}")
        if n >= len(self):
            return self
        return self.subset(sample_indices(len(self), n, seed))


def _row_kind(row: dict) -> str | None:
    if "choices" in row:
        return "choice"
    if "prompt" in row or "answer" in row:
        return "recall"
    if "text" in row:
        return "text"
    return None


def _nonempty_str(x) -> bool:
    return isinstance(x, str) and bool(x.strip())


def _normalize_row(row: dict, kind: str) -> dict:
    """Check one row against its kind; return the normalized row or raise with what is wrong."""
    if kind == "text":
        if not _nonempty_str(row.get("text")):
            raise ValueError("'text' must be a non-empty string")
        return {"text": row["text"], **({"id": row["id"]} if "id" in row else {})}
    if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        raise ValueError("'prompt' must be a non-empty string")
    out = {"prompt": row["prompt"].rstrip()}
    if "id" in row:
        out["id"] = row["id"]
    if kind == "recall":
        if not _nonempty_str(row.get("answer")):
            raise ValueError("'answer' must be a non-empty string")
        aliases = row.get("aliases", [])
        if not isinstance(aliases, list) or not all(_nonempty_str(a) for a in aliases):
            raise ValueError("'aliases' must be a list of non-empty strings")
        out["answer"] = row["answer"].strip()
        out["aliases"] = [a.strip() for a in aliases if a.strip() != out["answer"]]
        return out
    choices = row.get("choices")
    if not isinstance(choices, list) or len(choices) < 2 or not all(_nonempty_str(c) for c in choices):
        raise ValueError("'choices' must be a list of at least two non-empty strings")
    choices = [c.strip() for c in choices]
    if len(set(choices)) != len(choices):
        raise ValueError("'choices' has duplicates")
    answer = row.get("answer")
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        answer = choices[answer]
    if not isinstance(answer, str) or answer.strip() not in choices:
        raise ValueError("'answer' must be one of the choices (or its index)")
    out.update(choices=choices, answer=answer.strip())
    return out


def normalize_eval_rows(numbered: list[tuple[int, dict]], where: str) -> tuple[str, list[dict]]:
    """Infer the kind of ``(line, row)`` pairs and normalize them; errors name the line."""
    kind = None
    rows = []
    for lineno, row in numbered:
        k = _row_kind(row)
        if k is None:
            raise LmscopeError(f"{where}:{lineno}: not an evaluation example; expected {EVAL_SCHEMA_DOC}")
        if kind is None:
            kind = k
        elif k != kind:
            raise LmscopeError(f"{where}:{lineno}: a {k} example in a file of {kind} examples; "
                               "keep one kind per file")
        try:
            rows.append(_normalize_row(row, kind))
        except ValueError as e:
            raise LmscopeError(f"{where}:{lineno}: {e}") from None
    if not rows:
        raise LmscopeError(f"{where}: no examples")
    return kind, rows


def load_eval_task(spec: str | os.PathLike) -> EvalTask:
    """A bundled evaluation set by name (``factual_recall``, ``true_false``) or a JSONL file.

    File schema (every line of one kind): see :data:`EVAL_KINDS`.
    """
    s = str(spec)
    if s in EVAL_SETS and not Path(s).exists():
        rows = load_eval_set(s)
        kind, norm = normalize_eval_rows(list(enumerate(rows, 1)), f"bundled {s}")
        return EvalTask(s, kind, norm)
    p = Path(s).expanduser()
    if not p.exists():
        raise LmscopeError(f"no such task file: {s} (bundled sets: {', '.join(EVAL_SETS)})")
    if p.is_dir():
        raise LmscopeError(f"{s} is a folder; give a JSONL task file")
    kind, rows = normalize_eval_rows(read_jsonl_numbered(p), str(p))
    return EvalTask(p.stem, kind, rows)
