"""Seeded rejection sampling of distinct rows, shared by the synthetic suites."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lmscope.errors import LmscopeError

SPLIT_STREAMS = {"train": 0, "val": 1, "gen": 2, "ood": 2, "deep": 2}


def split_rng(seed: int, split: str, salt: int = 0) -> np.random.Generator:
    """One independent stream per (seed, split); a split's rows still skip texts earlier splits drew."""
    return np.random.default_rng([seed, SPLIT_STREAMS[split], salt])


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def flip(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key of ``weights`` drawn with probability proportional to its weight."""
    keys = list(weights)
    total = sum(weights.values())
    r = rng.random() * total
    for k in keys:
        r -= weights[k]
        if r < 0:
            return k
    return keys[-1]


def draw_rows(n: int, sample: Callable[[], dict | None], seen: set[str], what: str) -> list[dict]:
    """``n`` rows from ``sample`` (which returns None for a rejected draw) whose texts are not in ``seen``.

    ``seen`` is updated, so rows are distinct within and across the splits drawn with it. Gives up
    with :class:`LmscopeError` after ``100 n + 1000`` draws.
    """
    rows: list[dict] = []
    limit = 100 * n + 1000
    tries = 0
    while len(rows) < n:
        if tries >= limit:
            raise LmscopeError(f"could draw only {len(rows)} of {n} distinct {what} examples in {limit} tries; "
                               "ask for fewer examples or change the suite's options")
        tries += 1
        row = sample()
        if row is None or row["text"] in seen:
            continue
        seen.add(row["text"])
        rows.append(row)
    return rows


MAX_COUNT = 10_000_000  # rows one split may have (a typo is an error, not a hang); as data.tasks.MAX_ROWS


def check_count(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise LmscopeError(f"{name} must be a whole number >= 0, got {n!r}")
    if n > MAX_COUNT:
        raise LmscopeError(f"{name} must be a whole number <= {MAX_COUNT:,}, got {n!r}")
    return int(n)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LmscopeError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def mix(rng: np.random.Generator, *parts: list[dict]) -> list[dict]:
    """Concatenate row lists and shuffle them with ``rng``."""
    rows = [r for part in parts for r in part]
    return [rows[i] for i in rng.permutation(len(rows))]
