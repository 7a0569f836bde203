"""Spectrum summaries of one weight matrix from its singular values (the WeightWatcher family).

The empirical spectral density (ESD) is the set of eigenvalues of W^T W, i.e. the squared singular
values. ``alpha`` is the exponent of a power law fitted to the ESD tail by maximum likelihood
(Hill estimator), with the lower cutoff ``xmin`` chosen by the minimum Kolmogorov-Smirnov distance.
"""

from __future__ import annotations

import math

import numpy as np

MIN_TAIL = 10  # fewest eigenvalues a power-law tail may have


def powerlaw_fit(evals: np.ndarray, min_tail: int = MIN_TAIL) -> dict:
    """Fit p(x) ~ x^-alpha for x >= xmin to positive ``evals``.

    For each candidate xmin = evals[i] (ascending order, keeping at least ``min_tail`` values in the
    tail) the MLE is alpha_i = 1 + n / sum(log(x / xmin)); the KS distance compares the tail's
    empirical CDF (j / n at the j-th sorted point) with 1 - (x / xmin)^(1 - alpha). The candidate
    with the smallest distance wins (the first one on ties).
    """
    x = np.sort(np.asarray(evals, dtype=np.float64))
    x = x[x > x[-1] * 1e-12] if len(x) else x
    n_all = len(x)
    if n_all < min_tail + 1:
        return dict(_NO_FIT)
    logx = np.log(x)
    # suffix sums of log x: S[i] = sum_{j >= i} log x_j
    suffix = np.cumsum(logx[::-1])[::-1]
    last = n_all - min_tail            # candidates i = 0 .. last
    n = n_all - np.arange(last + 1)    # tail sizes
    denom = suffix[: last + 1] - n * logx[: last + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1.0 + n / denom
    i, ks = ks_argmin(logx, alphas)
    if i < 0:
        return dict(_NO_FIT)
    return {"alpha": float(alphas[i]), "xmin": float(x[i]), "ks_distance": ks,
            "tail_size": int(n_all - i)}


_KS_BLOCK = 65_536
_NO_FIT = {"alpha": math.nan, "xmin": math.nan, "ks_distance": math.nan, "tail_size": 0}
_KS_FULL_BELOW = 128   # fewer values than this: every candidate's distance is computed in full (it is cheap)
_KS_SEEDS = 8          # candidates computed in full first, to bound the minimum from above
_KS_MARGIN = 1e-9      # a candidate is skipped only when its lower bound exceeds that bound by more than this


def ks_distances(logx: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """KS distance of the tail x[i:] to the power law with exponent ``alphas[i]`` and xmin x[i].

    ``logx``: log of the ascending values; ``alphas``: one exponent per candidate i = 0 .. len - 1.
    D_i = max over j >= i of |(j - i) / n_i - (1 - exp((1 - alpha_i) (log x_j - log x_i)))| with
    n_i = len(x) - i; infinity where alpha_i is not a finite number above 1.
    """
    return _ks_max(logx, alphas, np.arange(len(alphas)), 1)


def ks_argmin(logx: np.ndarray, alphas: np.ndarray) -> tuple[int, float]:
    """The candidate with the smallest KS distance (the first one on ties) and that distance.

    The same answer as ``argmin(ks_distances(logx, alphas))``, without computing every distance in
    full: the distance is a maximum over the tail, so its maximum over every ``stride``-th point of the
    tail is a lower bound. A few candidates with the smallest bounds are computed in full; their best
    distance bounds the minimum from above, and only the candidates whose lower bound does not exceed
    it are computed in full too. Returns (-1, inf) when no candidate has a finite exponent above 1.
    """
    n_all, c_all = len(logx), len(alphas)
    rows = np.arange(c_all)
    if n_all < _KS_FULL_BELOW:
        d = _ks_max(logx, alphas, rows, 1)
    else:
        stride = max(2, int(math.sqrt(n_all)) // 3)
        lower = _ks_max(logx, alphas, rows, stride)
        if not np.isfinite(lower).any():
            return -1, math.inf
        seeds = np.sort(np.argsort(lower, kind="stable")[:_KS_SEEDS])
        d = np.full(c_all, np.inf)
        d[seeds] = _ks_max(logx, alphas, seeds, 1)
        keep = lower <= d[seeds].min() + _KS_MARGIN
        keep[seeds] = False
        rest = np.flatnonzero(keep)
        if len(rest):
            d[rest] = _ks_max(logx, alphas, rest, 1)
    if not np.isfinite(d).any():
        return -1, math.inf
    i = int(np.argmin(d))
    return i, float(d[i])


def _ks_max(logx: np.ndarray, alphas: np.ndarray, rows: np.ndarray, stride: int) -> np.ndarray:
    """For each candidate in ``rows`` (ascending), max |empirical - power-law CDF| over the tail offsets
    k = 0, stride, 2 stride, ... (every offset for stride 1: the KS distance); infinity for an exponent
    that is not a finite number above 1.

    Vectorized across candidates: each block of candidates is laid out by offset k = j - i (a sliding
    window over log x padded with a huge value), so only the tails are computed, not the full square.
    Past the end of a tail the padding makes both CDFs exactly 1, which adds nothing to the maximum.
    """
    n_all = len(logx)
    out = np.full(len(rows), np.inf)
    a = alphas[rows]
    valid = np.isfinite(a) & (a > 1)
    if not valid.any():
        return out
    # a huge finite pad rather than +inf: exp() of -inf takes a slow path, exp(-1e300) is just 0
    padded = np.concatenate([logx, np.full(n_all, 1e300)])
    offsets = np.arange(0, n_all, stride)
    # windows[i, q] = log x_{i + offsets[q]}: a strided view, nothing copied
    windows = np.lib.stride_tricks.as_strided(padded, shape=(n_all, len(offsets)),
                                              strides=(padded.strides[0], stride * padded.strides[0]),
                                              writeable=False)
    k_all = offsets.astype(np.float64)[None, :]
    # blocks of about _KS_BLOCK values, computed in two reused buffers (fresh large arrays cost page faults)
    chunk = max(1, min(len(rows), _KS_BLOCK // max(len(offsets), 1)))
    theo, emp = np.empty((chunk, len(offsets))), np.empty((chunk, len(offsets)))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            c = len(r)
            width = int(np.searchsorted(offsets, n_all - r[0]))             # offsets within the longest tail
            t, e = theo[:c, :width], emp[:c, :width]
            if r[-1] - r[0] == c - 1:                                        # consecutive candidates: a slice
                src = windows[r[0]:r[-1] + 1, :width]
            else:
                src = windows[r, :width]
            np.subtract(src, logx[r, None], out=t)                           # log(x_{i+k} / x_i)
            np.multiply(t, 1.0 - a[start:start + c, None], out=t)
            np.exp(t, out=t)
            np.subtract(1.0, t, out=t)                                       # the power law's CDF
            np.divide(k_all[:, :width], (n_all - r.astype(np.float64))[:, None], out=e)
            np.minimum(e, 1.0, out=e)                                        # the empirical CDF
            np.subtract(e, t, out=t)
            np.abs(t, out=t)
            out[start:start + c] = np.where(valid[start:start + c], t.max(axis=1), np.inf)
    return out


def spectrum_metrics(s: np.ndarray, shape: tuple[int, int]) -> dict:
    """All summaries of a matrix of ``shape`` with singular values ``s`` (any order)."""
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    m, n = shape
    big, small = max(m, n), min(m, n)
    lam = s**2
    smax = float(s[0]) if len(s) else 0.0
    tol = smax * big * np.finfo(np.float32).eps
    rank = int((s > tol).sum())
    out: dict = {"rank": rank, "spectral_norm": smax, "frobenius_norm": float(math.sqrt(lam.sum()))}
    if smax == 0.0:
        out.update(stable_rank=0.0, effective_rank=0.0, spectral_entropy=0.0, log_spectral_norm=-math.inf,
                   alpha=math.nan, alpha_weighted=math.nan, xmin=math.nan, ks_distance=math.nan,
                   tail_size=0, mp_bulk_edge=math.nan, mp_spikes=0)
        return out
    out["stable_rank"] = float(lam.sum() / lam[0])
    p = s[s > tol] / s[s > tol].sum()
    out["effective_rank"] = float(math.exp(-(p * np.log(p)).sum()))
    q = lam[s > tol] / lam[s > tol].sum()
    out["spectral_entropy"] = float(-(q * np.log(q)).sum() / math.log(rank)) if rank > 1 else 0.0
    out["log_spectral_norm"] = float(math.log10(lam[0]))
    fit = powerlaw_fit(lam[s > tol])
    out.update(fit)
    out["alpha_weighted"] = fit["alpha"] * out["log_spectral_norm"]
    # Marchenko-Pastur reference: entries' variance from the whole matrix, ESD normalized by the long side
    sigma2 = lam.sum() / (m * n)
    edge = sigma2 * (1.0 + math.sqrt(small / big)) ** 2
    out["mp_bulk_edge"] = float(edge)
    # eigenvalues beyond the edge by more than a Tracy-Widom-sized margin count as spikes
    margin = 1.0 + 4.0 * small ** (-2.0 / 3.0)
    out["mp_spikes"] = int((lam / big > edge * margin).sum())
    return out


METRICS = ("rank", "stable_rank", "effective_rank", "spectral_entropy", "spectral_norm", "log_spectral_norm",
           "frobenius_norm", "alpha", "alpha_weighted", "xmin", "ks_distance", "tail_size", "mp_bulk_edge",
           "mp_spikes")
