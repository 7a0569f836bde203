"""LASER: layer-selective rank reduction (Sharma et al., "The Truth is in There").

A chosen weight matrix W (by layer and role) is replaced by its best rank-k approximation from the
SVD, k = floor(keep * min(m, n)) (at least 1). The interface speaks in the kept fraction ``keep``;
the paper's ``rate`` r on a 0-10 scale maps to keep = 1 - 0.1 * r (rate 9.9 is keep 0.01).
SVDs come from the shared cache, so every keep value of a matrix reuses one decomposition.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.models import ModelSource, open_model
from lmscope.models.checkpoint import save_edited
from lmscope.models.roles import canonical_role
from lmscope.spectral.svd import SVD, SVDCache


def keep_from_rate(rate: float) -> float:
    """The paper's rate (0-10) as a kept fraction."""
    return 1.0 - 0.1 * check_number("rate", rate, 0.0, below=10.0)


@dataclass(frozen=True)
class Reduction:
    layer: int
    role: str
    keep: float

    def __post_init__(self):
        check_int("layer", self.layer, 0)
        check_number("keep", self.keep, maximum=1.0, above=0.0)

    @property
    def key(self) -> str:
        return f"{self.layer}.{canonical_role(self.role)}"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "role": canonical_role(self.role), "keep": self.keep}

    @classmethod
    def parse(cls, text: str) -> Reduction:
        """``LAYER:ROLE:KEEP``, e.g. ``27:fc_in:0.01``."""
        m = re.fullmatch(r"\s*(\d+)\s*:\s*([A-Za-z_]+)\s*:\s*([0-9.eE+-]+)\s*", text)
        if not m:
            raise LmscopeError(f"bad reduction {text!r}; expected LAYER:ROLE:KEEP such as 27:fc_in:0.01")
        return cls(int(m.group(1)), m.group(2), float(m.group(3)))


def kept_rank(shape: tuple[int, int], keep: float) -> int:
    check_number("keep", keep, maximum=1.0, above=0.0)
    return max(1, math.floor(keep * min(shape) + 1e-9))


def low_rank(svd: SVD, k: int) -> torch.Tensor:
    """U_k diag(S_k) Vh_k."""
    return (svd.U[:, :k] * svd.S[:k]) @ svd.Vh[:k]


def check_reductions(src: ModelSource, reductions: list[Reduction]) -> None:
    if not reductions:
        raise LmscopeError("no reduction given (use --layer/--role/--keep or --reduce LAYER:ROLE:KEEP)")
    refs = src.matrices()
    roles = {r.role for r in refs}
    layers = sorted({r.layer for r in refs if r.layer is not None})
    seen = set()
    for red in reductions:
        role = canonical_role(red.role)
        if role not in roles:
            raise LmscopeError(f"unknown role {red.role!r} for {src.spec}; it has: {', '.join(sorted(roles))}")
        if red.layer not in layers:
            raise LmscopeError(f"layer {red.layer} does not exist in {src.spec} (layers {layers[0]}..{layers[-1]})")
        kept_rank((1, 1), red.keep)
        if red.key in seen:
            raise LmscopeError(f"matrix {red.key} is reduced twice")
        seen.add(red.key)


def laser_edits(model: str | ModelSource, reductions: list[Reduction], cache: SVDCache | None = None
                ) -> dict[str, torch.Tensor]:
    """The reduced matrices, keyed like ``MatrixRef.key``."""
    src = open_model(model)
    check_reductions(src, reductions)
    cache = cache if cache is not None else SVDCache()
    edits = {}
    for red in reductions:
        ref = src.ref(red.key)
        svd = cache.full(src.load(ref))
        edits[red.key] = low_rank(svd, kept_rank(ref.shape, red.keep))
    return edits


def _numel(shape) -> int:
    return math.prod(int(x) for x in shape)


def apply_laser(model: str | ModelSource, reductions: list[Reduction], out: str | Path,
                cache: SVDCache | None = None, quiet: bool | None = None, factored: bool = False,
                force: bool = False) -> dict:
    """Write a copy of ``model`` with the reductions applied; return what was done.

    With ``factored=True`` each reduced matrix is stored as two thin factors (a low-rank module)
    wherever that takes fewer parameters than the dense matrix (k * (m + n) < m * n) and the matrix
    is not a slice of a fused one; the others are stored dense, and the result says which.
    """
    from lmscope.models.lowrank import factors

    src = open_model(model)
    check_reductions(src, reductions)
    check_output_path_early(src, out, force)
    cache = cache if cache is not None else SVDCache()
    total = sum(_numel(src.tensor_shape(n)) for n in src.tensor_names())
    edits, fac, rows = {}, {}, []
    for red in reductions:
        ref = src.ref(red.key)
        m, n = ref.shape
        k = kept_rank(ref.shape, red.keep)
        svd = cache.full(src.load(ref))
        row = {**red.to_dict(), "key": red.key, "shape": [m, n], "rank": k,
               "dense_parameters": m * n, "factored_parameters": k * (m + n)}
        if factored and not ref.fused and k * (m + n) < m * n:
            fac[red.key] = factors(svd.U, svd.S, svd.Vh, k)
            row["stored"] = "factored"
        else:
            edits[red.key] = low_rank(svd, k)
            row["stored"] = "dense"
            if factored:
                row["why_dense"] = ("slice of a fused matrix" if ref.fused
                                    else "two factors would not be smaller than the matrix")
        rows.append(row)
    after = total - sum(r["dense_parameters"] - r["factored_parameters"] for r in rows if r["stored"] == "factored")
    path = save_edited(src, edits, out, note={"edit": "laser", "reductions": rows}, quiet=quiet, factored=fac,
                       force=force)
    return {"model": src.spec, "out": str(path), "reductions": rows, "parameters_before": total,
            "parameters_after": after}


def check_output_path_early(src: ModelSource, out: str | Path, force: bool = False) -> None:
    from lmscope.models.checkpoint import check_output_path

    check_output_path(src, out, force=force)
