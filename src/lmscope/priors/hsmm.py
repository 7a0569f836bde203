"""A hidden semi-Markov model: Gaussian frame emissions, Poisson segment durations, Dirichlet priors.

A video is a sequence of segments; each segment has an action ``a`` and a duration ``d``; its frames
are drawn independently from ``N(mean[a], diag(var))``. The first action comes from ``init``, each
next one from ``trans[previous]``, and durations from ``1 + Poisson(rate[a] - 1)`` (so the mean
duration is ``rate[a]``), truncated at ``max_duration``. :func:`semi_markov_viterbi` finds the most
likely segmentation. :func:`dirichlet_rows` turns counts and a prior into the posterior-mean
distribution ``(count + alpha * K * prior) / sum``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from lmscope.errors import LmscopeError

NEG = -np.inf


@dataclass
class Segmentation:
    labels: np.ndarray  # (T,) action per frame
    segments: list[tuple[int, int, int]]  # (action, start, end) with end exclusive
    score: float  # joint log-probability of the frames and the segmentation


def semi_markov_viterbi(frame_loglik: np.ndarray, log_init: np.ndarray, log_trans: np.ndarray,
                        log_dur: np.ndarray) -> Segmentation:
    """The most likely segmentation of ``T`` frames into actions.

    ``frame_loglik`` (T, K): log p(frame t | action k); ``log_init`` (K,); ``log_trans`` (K, K), row =
    previous action (self-transitions are allowed if the table allows them); ``log_dur`` (K, D):
    log p(duration = d + 1 | action). The last segment ends at frame T. O(T·K² + T·D·K).
    """
    x = np.asarray(frame_loglik, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0:
        raise LmscopeError(f"frame log-likelihoods must be (frames x actions) with at least one frame, got {x.shape}")
    T, K = x.shape
    log_init = np.asarray(log_init, dtype=float)
    log_trans = np.asarray(log_trans, dtype=float)
    log_dur = np.asarray(log_dur, dtype=float)
    if log_init.shape != (K,) or log_trans.shape != (K, K) or log_dur.ndim != 2 or log_dur.shape[0] != K:
        raise LmscopeError(f"shapes do not match {K} actions: init {log_init.shape}, transitions "
                           f"{log_trans.shape}, durations {log_dur.shape}")
    D = min(log_dur.shape[1], T)
    cum = np.vstack([np.zeros((1, K)), np.cumsum(x, axis=0)])  # cum[t] = sum of frames < t
    V = np.full((T + 1, K), NEG)  # V[t, a]: best score of frames < t with a segment of a ending at t
    back_d = np.zeros((T + 1, K), dtype=int)
    entry = np.full((T + 1, K), NEG)  # entry[s, a]: best score of starting a segment of a at frame s
    entry_prev = np.full((T + 1, K), -1, dtype=int)
    entry[0] = log_init
    dur = log_dur[:, :D].T  # (D, K)
    for t in range(1, T + 1):
        d = np.arange(1, min(D, t) + 1)
        s = t - d
        cand = entry[s] + (cum[t] - cum[s]) + dur[: len(d)]  # (len(d), K)
        best = np.argmax(cand, axis=0)
        V[t] = cand[best, np.arange(K)]
        back_d[t] = d[best]
        if t < T:
            via = V[t][:, None] + log_trans  # (previous, next)
            entry_prev[t] = np.argmax(via, axis=0)
            entry[t] = via[entry_prev[t], np.arange(K)]
    a = int(np.argmax(V[T]))
    score = float(V[T, a])
    if not np.isfinite(score):
        raise LmscopeError("no segmentation has non-zero probability (check the durations and transitions)")
    segments = []
    t = T
    while t > 0:
        d = int(back_d[t, a])
        segments.append((a, t - d, t))
        prev = int(entry_prev[t - d, a]) if t - d > 0 else -1
        t -= d
        a = prev
    segments.reverse()
    labels = np.empty(T, dtype=int)
    for act, s, e in segments:
        labels[s:e] = act
    return Segmentation(labels, segments, score)


def segmentation_score(frame_loglik, log_init, log_trans, log_dur, segments) -> float:
    """The joint log-probability of one given segmentation (for checks)."""
    total = 0.0
    prev = None
    for a, s, e in segments:
        total += log_init[a] if prev is None else log_trans[prev, a]
        total += float(np.sum(frame_loglik[s:e, a])) + log_dur[a, e - s - 1]
        prev = a
    return total


def poisson_log_durations(rates: np.ndarray, max_duration: int) -> np.ndarray:
    """log p(d) for d = 1..max_duration of ``1 + Poisson(rate - 1)``, renormalized on that range."""
    rates = np.maximum(np.asarray(rates, dtype=float), 1.0 + 1e-6)
    if max_duration < 1:
        raise LmscopeError(f"the maximum duration must be at least 1, got {max_duration}")
    k = np.arange(max_duration)  # d - 1
    lam = rates[:, None] - 1.0
    logp = k * np.log(lam) - lam - gammaln(k + 1)
    return logp - np.logaddexp.reduce(logp, axis=1, keepdims=True)


def dirichlet_rows(counts: np.ndarray, prior: np.ndarray | None, alpha: float, *, no_self: bool = False,
                   floor: float = 1e-6) -> np.ndarray:
    """Rows ``(count + alpha * K * prior) / sum`` (K = row length); ``prior=None`` is maximum likelihood.

    ``no_self`` zeroes the diagonal (a semi-Markov model never repeats an action back to back) before
    normalizing, in the prior as well as the counts. ``floor`` keeps unseen events possible.
    """
    counts = np.asarray(counts, dtype=float)
    K = counts.shape[-1]
    pseudo = np.zeros_like(counts) if prior is None else alpha * K * _rows_normalized(prior, no_self)
    m = counts + pseudo + floor
    if no_self and m.ndim == 2:
        np.fill_diagonal(m, 0.0)
    return m / m.sum(axis=-1, keepdims=True)


def _rows_normalized(p, no_self: bool) -> np.ndarray:
    p = np.array(p, dtype=float)
    if no_self and p.ndim == 2:
        np.fill_diagonal(p, 0.0)
    s = p.sum(axis=-1, keepdims=True)
    return np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / p.shape[-1])


@dataclass
class GaussianEmissions:
    """Per-action means and one shared diagonal variance, fit on labelled frames."""

    means: np.ndarray  # (K, F)
    var: np.ndarray  # (F,)

    @classmethod
    def fit(cls, features: list[np.ndarray], labels: list[np.ndarray], n_actions: int) -> GaussianEmissions:
        X = np.concatenate(features)
        y = np.concatenate(labels)
        means = np.zeros((n_actions, X.shape[1]))
        for a in range(n_actions):
            if np.any(y == a):
                means[a] = X[y == a].mean(axis=0)
        var = np.maximum(((X - means[y]) ** 2).mean(axis=0), 1e-6)
        return cls(means, var)

    def loglik(self, X: np.ndarray) -> np.ndarray:
        """(T, K) log-densities of each frame under each action."""
        diff = X[:, None, :] - self.means[None]
        return -0.5 * np.sum(diff ** 2 / self.var + np.log(2 * np.pi * self.var), axis=-1)


def edit_score(pred: list, gold: list) -> float:
    """100 · (1 - Levenshtein distance / the longer length) between two segment-level action sequences."""
    n, m = len(pred), len(gold)
    if max(n, m) == 0:
        return 100.0
    prev = list(range(m + 1))
    for i in range(1, n + 1):
        cur = [i] + [0] * m
        for j in range(1, m + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (pred[i - 1] != gold[j - 1]))
        prev = cur
    return 100.0 * (1.0 - prev[m] / max(n, m))


def segment_actions(labels) -> list:
    """The action of each run of equal frame labels."""
    out = []
    for a in labels:
        if not out or out[-1] != a:
            out.append(a)
    return out
