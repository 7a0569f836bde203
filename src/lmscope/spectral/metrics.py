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
    with the smallest distance wins.
    """
    x = np.sort(np.asarray(evals, dtype=np.float64))
    x = x[x > x[-1] * 1e-12] if len(x) else x
    n_all = len(x)
    nan = {"alpha": math.nan, "xmin": math.nan, "ks_distance": math.nan, "tail_size": 0}
    if n_all < min_tail + 1:
        return nan
    logx = np.log(x)
    # suffix sums of log x: S[i] = sum_{j >= i} log x_j
    suffix = np.cumsum(logx[::-1])[::-1]
    last = n_all - min_tail            # candidates i = 0 .. last
    idx = np.arange(last + 1)
    n = n_all - idx
    denom = suffix[: last + 1] - n * logx[: last + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1.0 + n / denom
    best = (math.inf, None)
    with np.errstate(invalid="ignore", over="ignore"):
        return _ks_search(x, logx, alphas, idx, last, n_all, best)


def _ks_search(x, logx, alphas, idx, last, n_all, best) -> dict:
    nan = {"alpha": math.nan, "xmin": math.nan, "ks_distance": math.nan, "tail_size": 0}
    chunk = max(1, 250_000 // max(n_all, 1))  # keeps the scan to a few MB
    for start in range(0, last + 1, chunk):
        stop = min(last + 1, start + chunk)
        ii = idx[start:stop][:, None]                       # (c, 1)
        jj = np.arange(n_all)[None, :]                      # (1, N)
        a = alphas[start:stop][:, None]
        valid = (jj >= ii) & np.isfinite(a) & (a > 1)
        rel = np.where(valid, logx[None, :] - logx[ii], 0.0)      # log(x_j / xmin)
        theo = 1.0 - np.exp((1.0 - a) * rel)
        emp = (jj - ii) / (n_all - ii)
        d = np.where(valid, np.abs(emp - theo), -np.inf).max(axis=1)
        d = np.where(np.isfinite(alphas[start:stop]) & (alphas[start:stop] > 1), d, np.inf)
        k = int(np.argmin(d))
        if d[k] < best[0]:
            best = (float(d[k]), start + k)
    if best[1] is None:
        return nan
    i = best[1]
    return {"alpha": float(alphas[i]), "xmin": float(x[i]), "ks_distance": best[0], "tail_size": int(n_all - i)}


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
