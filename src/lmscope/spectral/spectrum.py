"""Spectrum of every weight matrix of a model."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from lmscope.errors import LmscopeError
from lmscope.models import ModelSource, open_model
from lmscope.progress import progress
from lmscope.spectral.metrics import spectrum_metrics
from lmscope.spectral.svd import SVDCache


@dataclass
class SpectrumResult:
    """Per-matrix summaries (``table``) and the singular values themselves (``values[key]``)."""

    model: str
    table: pd.DataFrame
    values: dict[str, np.ndarray] = field(repr=False)

    def to_dict(self) -> dict:
        t = self.table.replace([np.inf, -np.inf], np.nan).astype(object)
        t = t.where(t.notna(), None)  # JSON has no NaN or infinity
        return {"model": self.model, "matrices": t.to_dict(orient="records")}

    def summary(self) -> dict:
        t = self.table
        return {
            "model": self.model,
            "matrices": int(len(t)),
            "mean_alpha": float(t["alpha"].mean()),
            "mean_stable_rank": float(t["stable_rank"].mean()),
            "over_trained (alpha<2)": int((t["alpha"] < 2).sum()),
            "under_trained (alpha>6)": int((t["alpha"] > 6).sum()),
        }


def analyze_spectrum(model: str | os.PathLike | ModelSource | torch.nn.Module, roles=None, layers=None,
                     cache: SVDCache | None = None, quiet: bool | None = None,
                     workers: int | None = None) -> SpectrumResult:
    """Singular values and summaries of each (layer, role) matrix.

    ``model``: a bundled name, a path, an opened source, or a model already in memory (a torch module,
    read through :class:`lmscope.models.module_source.ModuleSource`). ``workers``: matrices analyzed at
    once (default: ``torch.get_num_threads()``, fewer when the largest matrices are big, so that the
    matrices in flight stay within about 256 MB); the threads are shared out, each worker's BLAS getting
    ``torch.get_num_threads() // workers`` of them. One matrix per worker is in memory at a time. The
    numbers do not depend on ``workers`` beyond rounding (BLAS thread counts can reorder sums).
    """
    if isinstance(model, torch.nn.Module):
        from lmscope.models.module_source import ModuleSource

        src = ModuleSource(model)
    else:
        src = open_model(model)
    cache = cache if cache is not None else SVDCache()
    refs = src.matrices(roles=roles, layers=layers)
    threads = max(1, torch.get_num_threads())
    if workers is None:
        largest = max((r.shape[0] * r.shape[1] for r in refs), default=0)
        workers = max(1, _PARALLEL_BYTES // max(1, _BYTES_PER_ENTRY * largest))
        workers = min(threads, workers)
    workers = max(1, min(int(workers), len(refs)))
    blas_threads = max(1, threads // workers)

    def one(ref):
        w = src.load(ref)
        try:
            s = cache.values(w)
        except ValueError as e:  # non-finite weights
            raise LmscopeError(f"cannot take the spectrum of {ref.name} in {src.spec}: {e}") from None
        del w
        return s, {**ref.to_dict(), **spectrum_metrics(s, ref.shape)}

    with _blas_threads(blas_threads):
        if workers == 1:
            results = [one(ref) for ref in progress(refs, desc="spectrum", quiet=quiet)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                results = list(progress(pool.map(one, refs), total=len(refs), desc="spectrum", quiet=quiet))
    values = {ref.key: s for ref, (s, _) in zip(refs, results, strict=True)}
    return SpectrumResult(src.spec, pd.DataFrame([row for _, row in results]), values)


# a worker holds its matrix (float32), a float64 block of it and the Gram matrix: about 12 bytes an entry
_BYTES_PER_ENTRY = 12
_PARALLEL_BYTES = 256 * 2**20


@contextlib.contextmanager
def _blas_threads(n: int):
    """BLAS calls limited to ``n`` threads each while the matrices are analyzed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it the BLAS pools stay as they are: still correct, maybe oversubscribed
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
