"""A LASER study with resplits: how much a grid's validation-chosen reduction helps, with intervals.

One search on one validation split says little when the grid is large and the split small: the best of
many configs on a few hundred prompts looks better than it is. A study scores every config of a fixed
grid once on every prompt (the per-prompt results are kept), then, for each of R seeded random
validation/test resplits, chooses the config with the best validation accuracy (ties: lower log-loss, then
grid order) and reports its test accuracy minus the unmodified model's on the same test prompts, with a
paired bootstrap 95 % interval over the test prompts. Across resplits it reports the mean difference with
a bootstrap interval over the resplits (resplits share prompts, so that interval is optimistic; the
per-resplit intervals are the honest unit).

It also splits the test prompts by what the unmodified model does: of those it gets wrong, how many the
chosen reduction turns right (fixed); of those it gets right, how many it turns wrong (broken).

Scoring is :data:`~lmscope.spectral.laser_search.SCORINGS`: ``single-token`` (the paper's CounterFact
rule) keeps only prompts whose answer is one token of the model's tokenizer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from lmscope.data.evalsets import EvalTask, load_eval_task
from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.lm.scoring import TaskScorer, better, resolve_device
from lmscope.models import open_model
from lmscope.models.checkpoint import WeightEditor
from lmscope.models.roles import canonical_role
from lmscope.spectral.laser import Reduction, check_reductions, kept_rank
from lmscope.spectral.laser_search import (
    DEFAULT_ROLES,
    PAPER_KEEPS,
    check_scoring,
    late_layers,
    score_grid,
    scored_task,
    split_indices,
)
from lmscope.spectral.svd import SVDCache


@dataclass(frozen=True)
class StudyConfig:
    """The grid (``layers=None``: the last :data:`~lmscope.spectral.laser_search.PAPER_LAST_LAYERS` layers),
    the scoring, and the resplits: resplit r shuffles with seed ``seed + r``."""

    layers: tuple[int, ...] | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES
    keeps: tuple[float, ...] = PAPER_KEEPS
    scoring: str = "single-token"
    resplits: int = 10
    val_fraction: float = 0.2
    seed: int = 0
    n_boot: int = 2000
    batch_size: int = 32
    device: str = "auto"

    def __post_init__(self):
        check_scoring(self.scoring)
        check_int("resplits", self.resplits, 1)
        check_number("val_fraction", self.val_fraction, above=0.0, below=1.0)
        check_int("seed", self.seed, 0)
        check_int("n_boot", self.n_boot, 100)
        check_int("batch_size", self.batch_size, 1)
        if not self.roles or not self.keeps:
            raise LmscopeError("give at least one role and one keep value")
        for k in self.keeps:
            check_number("keep", k, maximum=1.0, above=0.0)
        if len(set(self.keeps)) != len(self.keeps):
            raise LmscopeError("keep values repeat")
        for layer in self.layers or ():
            check_int("layer", layer, 0)


# ------------------------------------------------------------------------------------------------
# statistics (pure functions of per-prompt results)
# ------------------------------------------------------------------------------------------------
def bootstrap_mean(values, n_boot: int = 2000, seed=0, level: float = 0.95) -> dict:
    """The mean of ``values`` and a percentile bootstrap interval for it (``n_boot`` seeded resamples
    with replacement). For a paired difference pass ``other - base`` per prompt."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0:
        raise LmscopeError("bootstrap needs a non-empty list of numbers")
    check_int("n_boot", n_boot, 1)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for s in range(0, n_boot, 256):  # bounded memory: at most 256 resamples at once
        m = min(256, n_boot - s)
        means[s:s + m] = v[rng.integers(0, len(v), size=(m, len(v)))].mean(axis=1)
    a = (1.0 - level) / 2
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(v))}


def choose(rows: list[dict], idx: np.ndarray) -> int:
    """The index of the row whose per-prompt results on ``idx`` are best: higher accuracy, then lower
    log-loss, then the earlier row."""
    best, best_s = -1, None
    for i, r in enumerate(rows):
        s = {"accuracy": float(np.mean(r["top1"][idx])), "logloss": float(np.mean(r["logloss"][idx]))}
        if best_s is None or better(s, best_s):
            best, best_s = i, s
    return best


def stratum(base_top1, other_top1) -> dict:
    """Prompts the unmodified model gets wrong / right, and how many of each the other model flips."""
    b = np.asarray(base_top1, dtype=bool)
    o = np.asarray(other_top1, dtype=bool)
    return {"base_wrong": int((~b).sum()), "fixed": int((~b & o).sum()),
            "base_right": int(b.sum()), "broken": int((b & ~o).sum())}


def resplit_analysis(base: dict, rows: list[dict], cfg: StudyConfig) -> tuple[list[dict], dict]:
    """Per resplit: the validation-chosen row and its test difference to ``base`` with a paired bootstrap
    interval and the stratum counts; then the summary over resplits. ``base`` and each row hold numpy
    arrays ``top1`` and ``logloss`` over the same prompts; rows also hold ``layer``, ``role``, ``keep``."""
    n = len(base["top1"])
    out = []
    for r in range(cfg.resplits):
        val, test = (np.asarray(x, dtype=int) for x in split_indices(n, cfg.val_fraction, cfg.seed + r))
        i = choose(rows, val)
        row = rows[i]
        base_val = {"accuracy": float(np.mean(base["top1"][val])), "logloss": float(np.mean(base["logloss"][val]))}
        chosen_val = {"accuracy": float(np.mean(row["top1"][val])), "logloss": float(np.mean(row["logloss"][val]))}
        diff = bootstrap_mean(row["top1"][test] - base["top1"][test], cfg.n_boot, [cfg.seed, 1, r])
        out.append({"resplit": r, "split_seed": cfg.seed + r, "n_val": len(val), "n_test": len(test),
                    "layer": row["layer"], "role": row["role"], "keep": row["keep"], "rank": row.get("rank"),
                    "val_base": base_val["accuracy"], "val_chosen": chosen_val["accuracy"],
                    "beats_base_on_val": better(chosen_val, base_val),
                    "test_base": float(np.mean(base["top1"][test])), "test_chosen": float(np.mean(row["top1"][test])),
                    "delta": diff["mean"], "lo": diff["lo"], "hi": diff["hi"],
                    **stratum(base["top1"][test], row["top1"][test])})
    deltas = np.array([o["delta"] for o in out])
    over = bootstrap_mean(deltas, cfg.n_boot, [cfg.seed, 3])
    summary = {"resplits": len(out), "mean_delta": over["mean"], "lo": over["lo"], "hi": over["hi"],
               "min_delta": float(deltas.min()), "max_delta": float(deltas.max()),
               "positive": int((deltas > 0).sum()), "negative": int((deltas < 0).sum()),
               "interval_above_zero": sum(o["lo"] > 0 for o in out),
               "interval_below_zero": sum(o["hi"] < 0 for o in out),
               "beats_base_on_val": sum(o["beats_base_on_val"] for o in out),
               **{k: int(sum(o[k] for o in out)) for k in ("base_wrong", "fixed", "base_right", "broken")}}
    picks: dict[str, int] = {}
    for o in out:
        key = f"{o['layer']}:{o['role']}:{o['keep']:g}"
        picks[key] = picks.get(key, 0) + 1
    summary["picks"] = dict(sorted(picks.items(), key=lambda kv: -kv[1]))
    return out, summary


# ------------------------------------------------------------------------------------------------
# the study
# ------------------------------------------------------------------------------------------------
@dataclass
class LaserStudyResult:
    model: str
    task: str
    config: dict
    n_task: int  # examples in the task
    n_scored: int  # examples the scoring keeps
    base: dict  # accuracy and log-loss of the unmodified model on every scored example
    grid: list[dict]  # every config on every scored example: accuracy, delta with interval, stratum
    resplits: list[dict]
    summary: dict
    timing: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        s, c = self.summary, self.config
        lines = [f"LASER study on {self.model}, task {self.task}: {len(self.grid)} configs "
                 f"(layers {c['layers'][0]}-{c['layers'][-1]}, {', '.join(c['roles'])}, keep "
                 f"{', '.join(f'{k:g}' for k in c['keeps'])}), {c['scoring']} scoring keeps {self.n_scored} of "
                 f"{self.n_task} examples",
                 f"  unmodified accuracy on all {self.n_scored}: {100 * self.base['accuracy']:.1f}%",
                 f"  {s['resplits']} resplits ({c['val_fraction']:.0%} validation): chosen config's test accuracy "
                 f"minus the unmodified model's: mean {100 * s['mean_delta']:+.1f} points (95% interval over "
                 f"resplits {100 * s['lo']:+.1f} to {100 * s['hi']:+.1f}; range {100 * s['min_delta']:+.1f} to "
                 f"{100 * s['max_delta']:+.1f})",
                 f"  per-resplit intervals above zero: {s['interval_above_zero']} of {s['resplits']}, below zero: "
                 f"{s['interval_below_zero']}; chosen config beat the unmodified model on validation in "
                 f"{s['beats_base_on_val']}",
                 f"  test prompts the unmodified model gets wrong: {s['fixed']} of {s['base_wrong']} fixed; right: "
                 f"{s['broken']} of {s['base_right']} broken (summed over resplits)",
                 "  picks: " + ", ".join(f"{k} x{v}" for k, v in s["picks"].items())]
        return lines


def study_grid(src, cfg: StudyConfig) -> list[Reduction]:
    layers = sorted(set(cfg.layers)) if cfg.layers else late_layers(src)
    grid = [Reduction(L, canonical_role(role), float(k)) for L in layers for role in cfg.roles for k in cfg.keeps]
    for L in layers:  # clear errors for a layer or role the model lacks, before any work
        check_reductions(src, [Reduction(L, role, cfg.keeps[0]) for role in cfg.roles])
    for k in cfg.keeps:
        kept_rank((1, 1), float(k))
    return grid


def laser_study(model, task: str | EvalTask, cfg: StudyConfig | None = None, quiet: bool | None = None,
                log=None) -> LaserStudyResult:
    """Run the study of ``cfg`` (see the module docstring)."""
    cfg = cfg or StudyConfig()
    log = log or (lambda msg: None)
    src = open_model(model)
    src.require_lm_head("a LASER study")
    task = load_eval_task(task) if not isinstance(task, EvalTask) else task
    if task.kind != "recall":
        raise LmscopeError(f"a LASER study scores top-1 answers of a recall task; {task.name} is a {task.kind} task")
    grid = study_grid(src, cfg)
    tok = src.load_tokenizer()
    scored, _ = scored_task(task, tok, cfg.scoring)
    if len(scored) < 2:
        raise LmscopeError(f"{cfg.scoring} scoring keeps {len(scored)} of {len(task)} examples: too few to split")
    split_indices(len(scored), cfg.val_fraction, cfg.seed)  # a clear error now when it cannot be split
    log(f"{cfg.scoring} scoring keeps {len(scored)} of {len(task)} examples; {len(grid)} configs")
    device = resolve_device(cfg.device)
    model_hf = src.load_model().to(device).eval()
    scorer = TaskScorer(model_hf, tok, scored, batch_size=cfg.batch_size, top_k=1, quiet=quiet)
    editor = WeightEditor(model_hf, src)
    t0 = time.perf_counter()
    first = min(r.layer for r in grid)  # no config edits below it: the unmodified model replays its input too
    if first > 0:
        scorer.prepare_prefix([first])
    b = scorer.score(start_layer=first)
    t_base = time.perf_counter() - t0
    base = {"top1": b.top1.astype(float), "logloss": b.logloss.astype(float)}
    t0 = time.perf_counter()
    scored_rows, _ = score_grid(scorer, editor, SVDCache(), grid, store=None, quiet=quiet, keep_scores=True)
    seconds = time.perf_counter() - t0
    rows = [{"layer": r["layer"], "role": r["role"], "keep": r["keep"], "rank": r["rank"],
             "top1": r["scores"].top1.astype(float), "logloss": r["scores"].logloss.astype(float)}
            for r in scored_rows]
    resplits, summary = resplit_analysis(base, rows, cfg)
    table = []
    for i, r in enumerate(rows):
        d = bootstrap_mean(r["top1"] - base["top1"], cfg.n_boot, [cfg.seed, 2, i])
        table.append({"layer": r["layer"], "role": r["role"], "keep": r["keep"], "rank": r["rank"],
                      "accuracy": float(r["top1"].mean()), "logloss": float(r["logloss"].mean()),
                      "d_accuracy": d["mean"], "lo": d["lo"], "hi": d["hi"], **stratum(base["top1"], r["top1"])})
    return LaserStudyResult(
        model=src.spec, task=task.name,
        config={**asdict(cfg), "layers": sorted({r.layer for r in grid}), "roles": list(dict.fromkeys(
            r.role for r in grid)), "keeps": list(cfg.keeps), "device": device.type},
        n_task=len(task), n_scored=len(scored),
        base={"accuracy": float(base["top1"].mean()), "logloss": float(base["logloss"].mean())},
        grid=table, resplits=resplits, summary=summary,
        timing={"base_seconds": t_base, "grid_seconds": seconds, "configs": len(grid),
                "seconds_per_config": seconds / len(grid)})
