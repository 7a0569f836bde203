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
    ks = ks_distances(logx, alphas)
    if not np.isfinite(ks).any():
        return dict(_NO_FIT)
    i = int(np.argmin(ks))
    return {"alpha": float(alphas[i]), "xmin": float(x[i]), "ks_distance": float(ks[i]),
            "tail_size": int(n_all - i)}


_KS_BLOCK = 65_536
_NO_FIT = {"alpha": math.nan, "xmin": math.nan, "ks_distance": math.nan, "tail_size": 0}


def ks_distances(logx: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """KS distance of the tail x[i:] to the power law with exponent ``alphas[i]`` and xmin x[i].

    ``logx``: log of the ascending values; ``alphas``: one exponent per candidate i = 0 .. len - 1.
    D_i = max over j >= i of |(j - i) / n_i - (1 - exp((1 - alpha_i) (log x_j - log x_i)))| with
    n_i = len(x) - i; infinity where alpha_i is not a finite number above 1.

    Vectorized across candidates: each block of candidates is laid out by offset k = j - i (a sliding
    window over log x padded with a huge value), so only the tails are computed, not the full square.
    Past the end of a tail the padding makes both CDFs exactly 1, which adds nothing to the maximum.
    """
    n_all, c_all = len(logx), len(alphas)
    out = np.full(c_all, np.inf)
    valid = np.isfinite(alphas) & (alphas > 1)
    if not valid.any():
        return out
    # a huge finite pad rather than +inf: exp() of -inf takes a slow path, exp(-1e300) is just 0
    padded = np.concatenate([logx, np.full(n_all, 1e300)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_all)     # windows[i, k] = log x_{i+k}
    k_all = np.arange(n_all, dtype=np.float64)[None, :]
    # blocks of about _KS_BLOCK values, computed in two reused buffers (fresh large arrays cost page faults)
    chunk = max(1, min(c_all, _KS_BLOCK // max(n_all, 1)))
    theo, emp = np.empty((chunk, n_all)), np.empty((chunk, n_all))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for start in range(0, c_all, chunk):
            stop = min(c_all, start + chunk)
            c, width = stop - start, n_all - start                          # width: the longest tail here
            t, e = theo[:c, :width], emp[:c, :width]
            np.subtract(windows[start:stop, :width], logx[start:stop, None], out=t)  # log(x_{i+k} / x_i)
            np.multiply(t, 1.0 - alphas[start:stop, None], out=t)
            np.exp(t, out=t)
            np.subtract(1.0, t, out=t)                                       # the power law's CDF
            np.divide(k_all[:, :width], (n_all - np.arange(start, stop, dtype=np.float64))[:, None], out=e)
            np.minimum(e, 1.0, out=e)                                        # the empirical CDF
            np.subtract(e, t, out=t)
            np.abs(t, out=t)
            out[start:stop] = np.where(valid[start:stop], t.max(axis=1), np.inf)
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
