"""Intruder dimensions (Shuttleworth et al., "LoRA vs Full Fine-tuning: An Illusion of Equivalence").

For a pre-trained matrix W0 and its fine-tuned version Wt, each of the top-k left singular vectors
of Wt is compared with every left singular vector of W0; it is an *intruder* when its largest
absolute cosine similarity stays below eps. Mitigation scales the intruders' singular values by
lambda: W' = Wt + (lambda - 1) * sum_i s_i u_i v_i^T. Its control (:func:`control_edits`) scales as
many randomly chosen non-intruder directions of the same top-k, in the same matrices, by the same
lambda. :func:`intruders_over_training` counts them at every kept checkpoint of a fine-tune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lmscope.errors import LmscopeError
from lmscope.models import ModelSource, open_model
from lmscope.models.checkpoint import save_edited
from lmscope.progress import progress
from lmscope.spectral.svd import SVD, SVDCache, content_key, topk_svd


def intruder_scores(U0: torch.Tensor, Ut: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Similarity matrix |Ut^T U0| (k x r0) and each tuned vector's maximum over the base vectors."""
    sim = (Ut.t().double() @ U0.double()).abs().numpy()
    return sim, sim.max(axis=1)


def check_k_eps(k: int, eps: float) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise LmscopeError(f"k must be a positive integer, got {k}")
    if not (0.0 < eps <= 1.0):
        raise LmscopeError(f"eps must be in (0, 1], got {eps}")


# the thresholds of IntruderResult.counts_by_eps: 0.05 .. 0.95, then finer towards 1 (where the matches of a
# short fine-tune sit)
EPS_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.97, 0.99, 0.995, 0.999)


@dataclass
class IntruderResult:
    base: str
    tuned: str
    k: int
    eps: float
    table: pd.DataFrame
    similarity: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    directions: dict[str, SVD] = field(repr=False, default_factory=dict)

    @property
    def total(self) -> int:
        return int(self.table["n_intruders"].sum())

    def by_layer(self) -> pd.DataFrame:
        return self.table.groupby("layer", as_index=False)["n_intruders"].sum()

    def by_role(self) -> pd.DataFrame:
        return self.table.groupby("role", as_index=False, sort=False)["n_intruders"].sum()

    def signature_matrix(self) -> str:
        """The matrix with the most intruders (ties: the one whose worst match is lowest)."""
        t = self.table.sort_values(["n_intruders", "min_max_cos"], ascending=[False, True], kind="stable")
        return str(t.iloc[0]["key"])

    def max_cos_values(self) -> np.ndarray:
        """Every tuned top-k vector's largest |cosine| with a base singular vector, all matrices together."""
        vals = [np.asarray(mc, dtype=float) for mc in self.table["max_cos"]] if len(self.table) else []
        return np.concatenate(vals) if vals else np.zeros(0)

    def counts_by_eps(self, eps: list[float] | tuple[float, ...] | None = None) -> pd.DataFrame:
        """The intruder count at other thresholds, from the same similarities (no new SVDs): one row per
        eps (default :data:`EPS_GRID` and this result's eps) with ``n_intruders`` (all matrices),
        ``matrices_with_intruders`` and one column of counts per role. At ``self.eps`` the count is
        :attr:`total`."""
        grid = sorted({float(e) for e in (EPS_GRID if eps is None else eps)} | ({self.eps} if eps is None else set()))
        for e in grid:
            if not 0.0 < e <= 1.0:
                raise LmscopeError(f"eps must be in (0, 1], got {e}")
        per_matrix = [np.asarray(mc, dtype=float) for mc in self.table["max_cos"]] if len(self.table) else []
        roles = list(dict.fromkeys(self.table["role"])) if len(self.table) else []
        rows = []
        for e in grid:
            counts = np.array([int((mc < e).sum()) for mc in per_matrix], dtype=int)
            row = {"eps": e, "n_intruders": int(counts.sum()), "matrices_with_intruders": int((counts > 0).sum())}
            for role in roles:
                row[role] = int(counts[(self.table["role"] == role).to_numpy()].sum())
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        return {"base": self.base, "tuned": self.tuned, "k": self.k, "eps": self.eps, "total_intruders": self.total,
                "matrices": int(len(self.table)), "matrices_with_intruders": int((self.table["n_intruders"] > 0).sum()),
                "by_role": dict(zip(self.by_role()["role"], self.by_role()["n_intruders"].astype(int).tolist()))}

    def to_dict(self) -> dict:
        t = self.table.copy()
        return {**self.summary(), "matrices_table": t.to_dict(orient="records"),
                "by_layer": dict(zip(self.by_layer()["layer"].astype(int).tolist(),
                                     self.by_layer()["n_intruders"].astype(int).tolist()))}


def _pair_refs(base: ModelSource, tuned: ModelSource, roles, layers):
    if base.family != tuned.family or (base.family is None and base.model_type != tuned.model_type):
        raise LmscopeError(
            f"architectures disagree: base {base.spec} is {base.model_type!r}, tuned {tuned.spec} is {tuned.model_type!r}"
        )
    b_refs = base.matrices(roles=roles, layers=layers)
    t_refs = {r.key: r for r in tuned.matrices(roles=roles, layers=layers)}
    pairs = []
    for rb in b_refs:
        rt = t_refs.get(rb.key)
        if rt is None:
            raise LmscopeError(f"tuned model {tuned.spec} has no matrix {rb.key} (base {base.spec} does)")
        if rt.shape != rb.shape:
            raise LmscopeError(f"shape mismatch for {rb.key}: base {rb.shape}, tuned {rt.shape}")
        pairs.append((rb, rt))
    if len(t_refs) != len(b_refs):
        extra = sorted(set(t_refs) - {r.key for r in b_refs})
        if extra:
            raise LmscopeError(f"tuned model has matrices the base lacks (e.g. {extra[0]}): different architectures")
    return pairs


def find_intruders(base: str | ModelSource, tuned: str | ModelSource, k: int = 10, eps: float = 0.5,
                   roles=None, layers=None, cache: SVDCache | None = None,
                   quiet: bool | None = None) -> IntruderResult:
    """Count intruder dimensions in every matrix of ``tuned`` relative to ``base``.

    The base's full SVDs come from (and go to) the SVD cache; for the tuned model only the top-k
    singular triplets are computed (exactly, see ``topk_svd``), unless its full SVD is cached.
    Matrices identical to the base are skipped (no intruders by definition).
    """
    check_k_eps(k, eps)
    base_src, tuned_src = open_model(base), open_model(tuned)
    cache = cache if cache is not None else SVDCache()
    rows, sims, dirs = [], {}, {}
    for rb, rt in progress(_pair_refs(base_src, tuned_src, roles, layers), desc="intruders", quiet=quiet):
        w0 = base_src.load(rb)
        wt = tuned_src.load(rt)
        kk = min(k, min(rb.shape))
        svd0 = cache.full(w0)
        if torch.equal(w0, wt):
            top = SVD(svd0.U[:, :kk], svd0.S[:kk], svd0.Vh[:kk])
        else:
            key_t = content_key(wt)
            full_t = cache.cached_full(wt, key_t)
            top = SVD(full_t.U[:, :kk], full_t.S[:kk], full_t.Vh[:kk]) if full_t is not None else topk_svd(wt, kk)
        sim, best = intruder_scores(svd0.U, top.U)
        intr = np.flatnonzero(best < eps)
        sims[rb.key] = sim.astype(np.float32)
        dirs[rb.key] = top
        rows.append({
            **rb.to_dict(),
            "n_intruders": int(len(intr)),
            "intruder_ranks": [int(i) for i in intr],
            "intruder_singular_values": [float(top.S[i]) for i in intr],
            "min_max_cos": float(best.min()),
            "max_cos": [float(x) for x in best],
            "delta_fro": float((wt - w0).norm()),
        })
    return IntruderResult(base_src.spec, tuned_src.spec, k, eps, pd.DataFrame(rows), sims, dirs)


def _check_scale(scale: float) -> None:
    if not (0.0 <= scale <= 1.0):
        raise LmscopeError(f"scale must be in [0, 1], got {scale}")


def _scaled(result: IntruderResult, tuned: ModelSource, ranks: dict[str, list[int]], scale: float
            ) -> dict[str, torch.Tensor]:
    """Each matrix of ``ranks`` with the singular values of its top-k directions at those ranks x ``scale``."""
    edits = {}
    for key, rk in ranks.items():
        if not rk:
            continue
        top = result.directions[key]
        idx = torch.tensor(rk, dtype=torch.long)
        u, s, vh = top.U[:, idx], top.S[idx], top.Vh[idx]
        edits[key] = tuned.load(key) + (scale - 1.0) * (u * s) @ vh
    return edits


def mitigation_edits(result: IntruderResult, tuned: ModelSource, scale: float = 0.75) -> dict[str, torch.Tensor]:
    """The edited matrices: every intruder's singular value multiplied by ``scale``."""
    _check_scale(scale)
    return _scaled(result, tuned, {row.key: list(row.intruder_ranks) for row in result.table.itertuples()}, scale)


def control_ranks(result: IntruderResult, seed: int = 0) -> dict[str, list[int]]:
    """The control of the mitigation: in every matrix with n intruders, n ranks drawn at random (without
    replacement, seeded) among the top-k directions that are not intruders (all of them where fewer than
    n are left). Matrices are visited in table order, so the draw depends only on ``seed`` and the result."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for row in result.table.itertuples():
        if row.n_intruders == 0:
            continue
        k = len(row.max_cos)
        pool = [i for i in range(k) if i not in set(row.intruder_ranks)]
        n = min(row.n_intruders, len(pool))
        out[row.key] = sorted(int(i) for i in rng.choice(pool, size=n, replace=False)) if n else []
    return out


def control_edits(result: IntruderResult, tuned: ModelSource, scale: float = 0.75, seed: int = 0
                  ) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """The control of :func:`mitigation_edits`: the same number of non-intruder top-k directions per matrix
    (:func:`control_ranks`) scaled by the same ``scale``. Returns the edited matrices and the ranks scaled."""
    _check_scale(scale)
    ranks = control_ranks(result, seed)
    return _scaled(result, tuned, ranks, scale), ranks


def intruders_over_training(base: str | ModelSource, tuned: str | Path, k: int = 10, eps: float = 0.5,
                            roles=None, layers=None, cache: SVDCache | None = None,
                            quiet: bool | None = None) -> pd.DataFrame:
    """Intruders at every kept checkpoint of a fine-tune (``lmscope finetune --keep-checkpoints``) and at its
    end: one row per step with ``step``, ``n_intruders``, ``matrices_with_intruders``, ``min_max_cos`` (the
    lowest similarity of any tuned top-k vector), one count per role, and ``max_cos`` (every tuned top-k
    vector's best match, all matrices together, for other thresholds). The base's SVDs are computed once."""
    from lmscope.train.finetune import checkpoint_steps

    check_k_eps(k, eps)
    base_src = open_model(base)
    cache = cache if cache is not None else SVDCache()
    rows = []
    for step, folder in progress(checkpoint_steps(tuned), desc="checkpoints", quiet=quiet):
        res = find_intruders(base_src, open_model(folder), k=k, eps=eps, roles=roles, layers=layers, cache=cache,
                             quiet=True)
        rows.append({"step": step, "n_intruders": res.total,
                     "matrices_with_intruders": int((res.table["n_intruders"] > 0).sum()),
                     "min_max_cos": float(res.table["min_max_cos"].min()),
                     **{str(r): int(n) for r, n in res.summary()["by_role"].items()},
                     "max_cos": [float(x) for x in res.max_cos_values()]})
    return pd.DataFrame(rows)


def mitigate_intruders(result: IntruderResult, out: str | Path, scale: float = 0.75,
                       tuned: str | ModelSource | None = None, quiet: bool | None = None,
                       force: bool = False) -> Path:
    """Write a new checkpoint with the intruders' singular values scaled by ``scale`` (under lmscope's
    output policy: ``out`` may not be, hold or be inside the tuned model or the base)."""
    from lmscope.models.checkpoint import check_output_path

    src = open_model(tuned if tuned is not None else result.tuned)
    base = Path(str(result.base)).expanduser()
    check_output_path(src, out, force=force, inputs=[base] if base.exists() else [])
    edits = mitigation_edits(result, src, scale)
    return save_edited(src, edits, out, note={"edit": "intruder-mitigation", "scale": scale, "k": result.k,
                                              "eps": result.eps, "base": result.base,
                                              "matrices_edited": sorted(edits)}, quiet=quiet, force=force)
