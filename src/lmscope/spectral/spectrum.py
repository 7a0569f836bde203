"""Spectrum of every weight matrix of a model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

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


def analyze_spectrum(model: str | ModelSource, roles=None, layers=None, cache: SVDCache | None = None,
                     quiet: bool | None = None) -> SpectrumResult:
    """Singular values and summaries of each (layer, role) matrix, one matrix in memory at a time."""
    src = open_model(model)
    cache = cache if cache is not None else SVDCache()
    rows, values = [], {}
    refs = src.matrices(roles=roles, layers=layers)
    for ref in progress(refs, desc="spectrum", quiet=quiet):
        w = src.load(ref)
        s = cache.values(w)
        del w
        values[ref.key] = s
        rows.append({**ref.to_dict(), **spectrum_metrics(s, ref.shape)})
    return SpectrumResult(src.spec, pd.DataFrame(rows), values)
