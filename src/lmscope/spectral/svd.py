"""SVDs computed once per matrix content and kept on disk; exact top-k singular triplets.

Cache entries are keyed by a SHA-256 of the float32 matrix bytes and its shape, so the same weights
reached through any path (a GGUF file, its converted directory, an adapter that leaves the matrix
alone) share one entry. Two kinds of entries exist: singular values only (``*-s.npy``) and the thin
SVD (``*.safetensors`` with U, S, Vh). A full entry also answers requests for values.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lmscope._io import atomic_path
from lmscope.cache import cache_dir, entry_written, mark_used


def content_key(w: torch.Tensor) -> str:
    w = w.detach().to(torch.float32).contiguous()
    h = hashlib.sha256()
    h.update(str(tuple(w.shape)).encode())
    h.update(w.numpy().tobytes())
    return h.hexdigest()[:40]


@dataclass
class SVD:
    U: torch.Tensor   # (m, r)
    S: torch.Tensor   # (r,)
    Vh: torch.Tensor  # (r, n)


class SVDCache:
    """Disk cache of SVDs. ``root=None`` uses ``$LMSCOPE_CACHE/svd``; ``enabled=False`` computes only.

    Every hit records the entry's use (:func:`lmscope.cache.mark_used`); in the default folder a new
    entry may prune the least recently used ones to keep the cache under its cap (:mod:`lmscope.cache`).
    """

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.enabled = enabled
        self.capped = root is None  # the lmscope cache's own folder: kept under the size cap
        self.root = Path(root) if root is not None else (cache_dir("svd") if enabled else None)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # the counters are shared by analyze_spectrum's worker threads

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _written(self, path: Path) -> None:
        if self.capped:
            entry_written(path)

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.safetensors", d / f"{key}-s.npy"

    def values(self, w: torch.Tensor, key: str | None = None) -> np.ndarray:
        """Singular values (descending, float64 array)."""
        if not self.enabled:
            self._count(False)
            return _svdvals(w)
        key = key or content_key(w)
        full, vals = self._paths(key)
        if vals.is_file():
            try:
                s = np.load(vals)
                self._count(True)
                mark_used(vals)
                return s
            except Exception:  # noqa: BLE001 - a damaged entry is recomputed
                pass
        svd = self._try_load_full(full)
        if svd is not None:
            self._count(True)
            mark_used(full)
            return svd.S.double().numpy()
        self._count(False)
        s = _svdvals(w)
        vals.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(vals) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, s)
        self._written(vals)
        return s

    def full(self, w: torch.Tensor, key: str | None = None) -> SVD:
        """Thin SVD W = U diag(S) Vh in float32."""
        if not self.enabled:
            self._count(False)
            return _svd(w)
        key = key or content_key(w)
        full, _ = self._paths(key)
        svd = self._try_load_full(full)
        if svd is not None:
            self._count(True)
            mark_used(full)
            return svd
        self._count(False)
        svd = _svd(w)
        from safetensors.torch import save_file

        full.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(full) as tmp:
            save_file({"U": svd.U.contiguous(), "S": svd.S.contiguous(), "Vh": svd.Vh.contiguous()}, str(tmp))
        self._written(full)
        return svd

    def cached_full(self, w: torch.Tensor, key: str | None = None) -> SVD | None:
        """The cached thin SVD if present, without computing anything."""
        if not self.enabled:
            return None
        path = self._paths(key or content_key(w))[0]
        svd = self._try_load_full(path)
        if svd is not None:
            mark_used(path)
        return svd

    @staticmethod
    def _try_load_full(path: Path) -> SVD | None:
        """A full entry, or None when it is missing or damaged (then it is recomputed)."""
        if not path.is_file():
            return None
        try:
            return SVDCache._load_full(path)
        except Exception:  # noqa: BLE001 - any read error means a damaged entry
            return None

    @staticmethod
    def _load_full(path: Path) -> SVD:
        from safetensors.torch import load_file

        d = load_file(str(path))
        return SVD(d["U"], d["S"], d["Vh"])


def _svdvals(w: torch.Tensor) -> np.ndarray:
    return singular_values(w)


def singular_values(w: torch.Tensor | np.ndarray) -> np.ndarray:
    """All singular values of a matrix (descending, float64), without singular vectors.

    Computed as the square roots of the eigenvalues of the Gram matrix of the short side, ``W^T W``
    (or ``W W^T``), formed and diagonalized in float64. For float32 (or lower precision) weights every
    product in the Gram matrix is exact in float64 and the symmetric eigensolver is backward stable, so
    each eigenvalue is off by at most about ``n * 1.1e-16 * s_1^2`` (n: the short side). A singular value
    s_i is then within a relative ``n * 1e-16 * (s_1 / s_i)^2`` (1e-9 for s_i >= 0.01 s_1, 1e-5 for
    s_i >= 1e-4 s_1), and the smallest (zero) ones within ``sqrt(n) * 1.5e-8 * s_1``: at least as close
    as a float32 SVD (relative ``1.2e-7 * s_1 / s_i``) except right at zero, where both are far below
    the rank threshold ``max(m, n) * 1.2e-7 * s_1``. It costs a Gram product and a symmetric eigensolve
    instead of a bidiagonalization: several times less than a float64 SVD.
    """
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu()
        a = (w if w.dtype in (torch.float32, torch.float64) else w.to(torch.float32)).numpy()
    else:
        a = np.asarray(w)
    if a.ndim != 2:
        raise ValueError(f"singular_values needs a matrix, not shape {a.shape}")
    if a.size == 0:
        return np.zeros(0)
    if a.shape[0] < a.shape[1]:
        a = a.T                                     # tall: the Gram matrix is a^T a, on the short side
    g = _gram64(a)
    if not np.isfinite(np.trace(g)):                # the trace is the sum of all squared entries
        raise ValueError("the matrix has non-finite entries (inf or NaN)")
    lam = np.linalg.eigvalsh(g)                     # ascending
    return np.sqrt(np.clip(lam[::-1], 0.0, None))


_GRAM_ONE_SHOT = 1 << 21   # entries converted to float64 at once (16 MB); larger matrices go by row blocks
_GRAM_BLOCK = 1 << 19      # entries per row block (4 MB in float64)


def _gram64(a: np.ndarray) -> np.ndarray:
    """a^T a in float64 for a tall ``a`` of any float dtype, without a float64 copy of a large ``a``."""
    if a.size <= _GRAM_ONE_SHOT:
        b = a.astype(np.float64)
        return b.T @ b
    rows = max(1, _GRAM_BLOCK // a.shape[1])
    g = None
    for start in range(0, a.shape[0], rows):
        b = a[start:start + rows].astype(np.float64)
        if g is None:
            g = b.T @ b
        else:
            g += b.T @ b
    return g


def _svd(w: torch.Tensor) -> SVD:
    U, S, Vh = torch.linalg.svd(w.to(torch.float32), full_matrices=False)
    return SVD(U.contiguous(), S.contiguous(), Vh.contiguous())


def topk_svd(w: torch.Tensor, k: int, tol: float = 1e-4, max_iter: int = 100, oversample: int = 10,
             seed: int = 0) -> SVD:
    """Top-k singular triplets, exact to ``tol`` (relative to the largest singular value).

    Block subspace iteration with Rayleigh-Ritz; stops when every one of the top-k pairs has a
    residual ``max(|W v - s u|, |W^T u - s v|) <= tol * s_1``, and falls back to a full SVD when it
    does not converge. Small matrices go straight to the full SVD.
    """
    w = w.to(torch.float32)
    m, n = w.shape
    r = min(m, n)
    k = min(k, r)
    p = min(k + oversample, r)
    if r <= 3 * p:
        full = _svd(w)
        return SVD(full.U[:, :k], full.S[:k], full.Vh[:k])
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(w @ torch.randn(n, p, generator=g))[0]           # (m, p)
    for it in range(max_iter):
        z = torch.linalg.qr(w.t() @ q)[0]                                   # (n, p)
        q = torch.linalg.qr(w @ z)[0]                                       # (m, p)
        if it % 2 == 1 or it == max_iter - 1:
            b = q.t() @ w                                                   # (p, n)
            ub, s, vh = torch.linalg.svd(b, full_matrices=False)
            U = q @ ub[:, :k]
            S, Vh = s[:k], vh[:k]
            res_v = (w @ Vh.t() - U * S).norm(dim=0)
            res_u = (w.t() @ U - Vh.t() * S).norm(dim=0)
            if float(torch.maximum(res_v, res_u).max()) <= tol * float(s[0]):
                return SVD(U.contiguous(), S.contiguous(), Vh.contiguous())
    full = _svd(w)
    return SVD(full.U[:, :k], full.S[:k], full.Vh[:k])
