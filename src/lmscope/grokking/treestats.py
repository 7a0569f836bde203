"""Comparing tree projections of one set of sentences under two models (a trained checkpoint and its
initial model): per-sentence scores, pooled F1, and seeded bootstrap intervals of the gaps.

The t-score of a set of sentences is the mean of the sentences' t-scores; its parsing F1 pools the
bracket counts of all sentences (as :attr:`lmscope.trees.TreeProjectionResult.f1`). A bootstrap
replicate draws sentences with replacement, the same draw for both models (the comparison is
paired), and recomputes both statistics from the drawn sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmscope.errors import LmscopeError


@dataclass
class SentenceScores:
    """Per sentence: ``t`` (its t-score) and ``counts`` (matched, predicted, gold brackets), shape (n, 3)."""

    t: np.ndarray
    counts: np.ndarray

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=float)
        self.counts = np.asarray(self.counts, dtype=float).reshape(-1, 3)
        if len(self.t) != len(self.counts) or not len(self.t):
            raise LmscopeError(f"{len(self.t)} t-scores and {len(self.counts)} bracket counts: need one of each "
                               "per sentence, at least one sentence")

    @classmethod
    def from_result(cls, result) -> SentenceScores:
        """From a :class:`lmscope.trees.TreeProjectionResult` with gold trees."""
        from lmscope.trees import bracket_match

        if not result.has_gold or any(s.gold is None for s in result.sentences):
            raise LmscopeError("every sentence needs a gold tree")
        return cls([s.t_score for s in result.sentences],
                   [bracket_match(s.tree, s.gold) for s in result.sentences])

    @property
    def t_score(self) -> float:
        return float(self.t.mean())

    @property
    def f1(self) -> float:
        return float(pooled_f1(self.counts.sum(0)))

    def to_dict(self) -> dict:
        return {"t": self.t.tolist(), "counts": self.counts.astype(int).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> SentenceScores:
        return cls(d["t"], d["counts"])


def pooled_f1(totals: np.ndarray) -> np.ndarray:
    """F1 from summed (matched, predicted, gold) counts; ``totals`` (..., 3); 0 where nothing matched."""
    totals = np.asarray(totals, dtype=float)
    m, p, g = totals[..., 0], totals[..., 1], totals[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(m > 0, 2 * m / (p + g), 0.0)  # = 2PR / (P + R) with P = m/p, R = m/g
    return f1


def gap_intervals(pairs: Sequence[tuple[SentenceScores, SentenceScores]], n_boot: int = 2000, seed: int = 0,
                  level: float = 0.95) -> dict:
    """Gaps ``a - b`` of the t-score and of the pooled F1 for pairs ``(a, b)`` of scores of the same
    sentences, averaged over the pairs (e.g. one pair per seed), with percentile bootstrap intervals:
    each replicate redraws the sentences of every pair independently (with replacement, the same draw
    for ``a`` and ``b``). With several pairs the interval is conditional on those pairs (runs); it does
    not cover the spread between them. Returns ``{"t_gap", "t_lo", "t_hi", "f1_gap", "f1_lo", "f1_hi",
    "n_pairs", "n_sentences", "n_boot", "level", "seed"}``."""
    if not pairs:
        raise LmscopeError("no pairs of scores to compare")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise LmscopeError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise LmscopeError(f"level must be in (0, 1), got {level!r}")
    rng = np.random.default_rng(seed)
    t_boot = np.zeros(n_boot)
    f_boot = np.zeros(n_boot)
    t_gap = f_gap = 0.0
    for a, b in pairs:
        n = len(a.t)
        if len(b.t) != n:
            raise LmscopeError(f"paired scores of {n} and {len(b.t)} sentences")
        t_gap += a.t_score - b.t_score
        f_gap += a.f1 - b.f1
        idx = rng.integers(0, n, size=(n_boot, n))
        t_boot += (a.t - b.t)[idx].mean(1)
        f_boot += pooled_f1(a.counts[idx].sum(1)) - pooled_f1(b.counts[idx].sum(1))
    k = len(pairs)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return {"t_gap": t_gap / k, "t_lo": float(np.percentile(t_boot / k, lo)), "t_hi": float(np.percentile(t_boot / k, hi)),
            "f1_gap": f_gap / k, "f1_lo": float(np.percentile(f_boot / k, lo)),
            "f1_hi": float(np.percentile(f_boot / k, hi)), "n_pairs": k,
            "n_sentences": int(sum(len(a.t) for a, _ in pairs)), "n_boot": n_boot, "level": level, "seed": seed}
