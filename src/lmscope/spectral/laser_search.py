"""LASER search and composition: which single rank reduction helps a model most, and which stack of them.

The search scores every (layer, role, keep) on a seeded validation split (20 % of the examples by
default), picks the config with the best validation accuracy (ties: lower log-loss), and reports
it on the held-out test split against the unmodified model. Composition then stacks reductions
greedily, from the last layer down, keeping one only when validation improves.

What keeps it fast: each matrix is decomposed once (the shared SVD cache) and every keep value is a
product of its leading factors; examples are scored in batches with only the answer positions
projected onto the vocabulary; and a config that edits layer L replays the stored hidden states
entering layer L (identical for every config of that layer) and runs only layers L and up. Finished
configs are appended to a progress file in the cache, so an interrupted search resumes where it
stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmscope.cache import cache_dir, entry_written, mark_used
from lmscope.data.evalsets import EvalTask, load_eval_task
from lmscope.errors import LmscopeError, check_int, check_number
from lmscope.lm.scoring import Scores, TaskScorer, better, check_top_k, resolve_device
from lmscope.models import ModelSource, open_model
from lmscope.models.checkpoint import WeightEditor
from lmscope.models.roles import canonical_role
from lmscope.progress import progress
from lmscope.spectral.laser import Reduction, check_reductions, kept_rank, low_rank
from lmscope.spectral.svd import SVDCache

DEFAULT_KEEPS = (0.9, 0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.01, 0.005)
DEFAULT_ROLES = ("fc_in", "fc_out")

# The pre-registered grid in the paper's regime (fixed before any of its results were seen): the MLP
# matrices of the last PAPER_LAST_LAYERS layers at kept fractions of at most 0.1. The authors' own grids
# cover the last 5 (Llama-2, 32 layers) or 11 (GPT-J, 28 layers) layers, fc_in and fc_out, and keep
# values down to 0.005; their CounterFact gain on GPT-J comes from the last layer's fc_in at keep 0.01.
PAPER_KEEPS = (0.1, 0.05, 0.01)
PAPER_LAST_LAYERS = 5
GRIDS = ("full", "paper")

SCORINGS = {
    "first-token": "every prompt; top-1 compares the model's next token with the first token of the answer or "
                   "an alias (multi-token answers are judged by their first token)",
    "single-token": "only prompts whose answer, after a space, is exactly one token of the model's tokenizer "
                    "(as the paper's CounterFact scoring); top-1 compares the model's next token with that token; "
                    "aliases are not used",
}


def check_scoring(scoring: str) -> str:
    if scoring not in SCORINGS:
        raise LmscopeError(f"unknown scoring {scoring!r}; choose one of {', '.join(SCORINGS)}")
    return scoring


def late_layers(src: ModelSource, n: int = PAPER_LAST_LAYERS) -> list[int]:
    """The last ``n`` layers of ``src`` (all of them when it has fewer)."""
    layers = sorted({r.layer for r in src.matrices() if r.layer is not None})
    if not layers:
        raise LmscopeError(f"{src.spec} has no numbered layers")
    return layers[-n:]


def answer_tokens(tokenizer, prompt: str, answer: str) -> list[int]:
    """The tokens of ``" " + answer`` as they follow ``prompt`` (the scorer's rule: the tokens the whole text
    adds after the prompt's own, or the answer alone when the prompt's tokens change in context)."""
    p = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    full = list(tokenizer(prompt + " " + answer, add_special_tokens=True)["input_ids"])
    if full[:len(p)] == p and len(full) > len(p):
        return full[len(p):]
    return list(tokenizer(" " + answer, add_special_tokens=False)["input_ids"])


def single_token_subset(task: EvalTask, tokenizer) -> tuple[EvalTask, list[int]]:
    """The examples of a recall task whose answer, after a space, is exactly one token; their aliases are
    dropped, so top-1 is correct only when the model's next token is that token. Returns the subset and
    the kept indices into ``task``."""
    if task.kind != "recall":
        raise LmscopeError(f"single-token scoring needs a recall task (prompt and answer); {task.name} is a "
                           f"{task.kind} task (use --scoring first-token)")
    keep = [i for i, r in enumerate(task.rows) if len(answer_tokens(tokenizer, r["prompt"], r["answer"])) == 1]
    if not keep:
        raise LmscopeError(f"no answer of {task.name} is a single token of this model's tokenizer; "
                           "use --scoring first-token")
    return EvalTask(task.name, task.kind, [{**task.rows[i], "aliases": []} for i in keep]), keep


def scored_task(task: EvalTask, tokenizer, scoring: str) -> tuple[EvalTask, list[int]]:
    """The examples ``scoring`` keeps (see :data:`SCORINGS`) and their indices into ``task``."""
    if check_scoring(scoring) == "single-token":
        return single_token_subset(task, tokenizer)
    return task, list(range(len(task)))


@dataclass
class SearchConfig:
    """What to search. ``layers=None`` means every layer; ``limit`` samples that many examples (seeded).

    ``grid="paper"`` searches the pre-registered grid instead (the last :data:`PAPER_LAST_LAYERS` layers,
    fc_in and fc_out, keep in :data:`PAPER_KEEPS`; ``layers`` and ``keeps`` are then ignored).
    ``scoring`` is one of :data:`SCORINGS`.
    """

    layers: list[int] | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES
    keeps: tuple[float, ...] = DEFAULT_KEEPS
    val_fraction: float = 0.2
    seed: int = 0
    limit: int | None = None
    batch_size: int = 32
    top_k: int = 5
    compose: bool = True
    device: str = "auto"
    resume: bool = True
    scoring: str = "first-token"
    grid: str = "full"

    def __post_init__(self):
        check_scoring(self.scoring)
        if self.grid not in GRIDS:
            raise LmscopeError(f"unknown grid {self.grid!r}; choose one of {', '.join(GRIDS)}")
        check_number("val_fraction", self.val_fraction, above=0.0, below=1.0)
        check_int("seed", self.seed, 0)
        if self.limit is not None:
            check_int("limit", self.limit, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("top_k", self.top_k, 1)
        for k in self.keeps:
            check_number("keep", k, maximum=1.0, above=0.0)
        for layer in self.layers or []:
            check_int("layer", layer, 0)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle of ``range(n)``; the first ``ceil(val_fraction * n)`` are validation."""
    if not 0.0 < val_fraction < 1.0:
        raise LmscopeError(f"the validation fraction must be in (0, 1), got {val_fraction}")
    n_val = math.ceil(val_fraction * n)
    if n_val < 1 or n - n_val < 1:
        raise LmscopeError(f"{n} examples cannot be split into validation and test; give more examples")
    order = np.random.default_rng(seed).permutation(n).tolist()
    return sorted(order[:n_val]), sorted(order[n_val:])


def _summary_row(s: Scores) -> dict:
    d = s.summary()
    return {"accuracy": d["accuracy"], f"top{s.k}_accuracy": d[f"top{s.k}_accuracy"],
            "logprob": d["logprob"], "logloss": d["logloss"], **({"perplexity": d["perplexity"]}
                                                                  if "perplexity" in d else {})}


@dataclass
class LaserSearchResult:
    model: str
    task: str
    kind: str
    config: dict
    n_val: int
    n_test: int
    base: dict  # {"val": summary, "test": summary}
    table: list[dict]  # one row per config (validation)
    best: dict | None  # {"layer", "role", "keep", "rank", "val", "test"}
    composed: dict | None  # {"reductions": [...], "val", "test", "trials": [...]}
    timing: dict = field(default_factory=dict)
    per_example: dict = field(default_factory=dict)  # test split: {"base": [...], "best": [...], ...}

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.table)

    @property
    def improved(self) -> bool:
        """Whether some reduction beat the unmodified model on the validation split (the split the search
        chooses on): higher accuracy, ties broken by lower log-loss."""
        return self.best is not None and better(self.best["val"], self.base["val"])

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("per_example")
        d["improved"] = self.improved
        return d

    def summary_lines(self) -> list[str]:
        def fmt(s: dict) -> str:
            if self.kind == "text":
                return f"log-loss {s['logloss']:.4f} (perplexity {s['perplexity']:.2f})"
            return f"accuracy {100 * s['accuracy']:.1f}% (log-loss {s['logloss']:.3f})"

        lines = [f"LASER search on {self.model}, task {self.task} ({self.kind}): {len(self.table)} configs, "
                 f"{self.n_val} validation / {self.n_test} test examples"]
        lines.append(f"  unmodified     val  {fmt(self.base['val'])}")
        lines.append(f"  unmodified     test {fmt(self.base['test'])}")
        if self.best:
            b = self.best
            lines.append(f"  best single    val  {fmt(b['val'])}  <- layer {b['layer']} {b['role']} keep {b['keep']:g}"
                         f" (rank {b['rank']})")
            lines.append(f"  best single    test {fmt(b['test'])}")
        if not self.improved:
            lines.append("  no reduction beat the unmodified model on validation (the best single config is shown "
                         "for reference)")
        if self.composed:
            c = self.composed
            what = ", ".join(f"{r['layer']}:{r['role']}:{r['keep']:g}" for r in c["reductions"]) or "none kept"
            lines.append(f"  composed       test {fmt(c['test'])}  <- {what}")
        return lines


# ------------------------------------------------------------------------------------------------
# progress file (resume after an interruption)
# ------------------------------------------------------------------------------------------------
def _model_identity(src: ModelSource) -> str:
    path = Path(getattr(src, "path", src.spec))
    parts = [str(path.resolve()) if path.exists() else src.spec]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    base = getattr(src, "base", None)
    if isinstance(base, ModelSource):
        parts.append(_model_identity(base))
    return "|".join(parts)


class _Progress:
    """Finished configs of one (model, task split, scoring) setting, appended as JSON lines."""

    def __init__(self, key: str, enabled: bool):
        self.path = cache_dir("laser-search") / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.jsonl"
        self.enabled = enabled
        self.rows: dict[tuple, dict] = {}
        if enabled and self.path.is_file():
            mark_used(self.path)
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    self.rows[(row["layer"], row["role"], row["keep"])] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by an interruption

    def get(self, layer: int, role: str, keep: float) -> dict | None:
        return self.rows.get((layer, role, keep)) if self.enabled else None

    def add(self, row: dict) -> None:
        self.rows[(row["layer"], row["role"], row["keep"])] = row
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if new:  # a new entry of the capped cache
                entry_written(self.path)


# ------------------------------------------------------------------------------------------------
# the search
# ------------------------------------------------------------------------------------------------
def plan_search(src: ModelSource, task: EvalTask, cfg: SearchConfig) -> list[Reduction]:
    """Every (layer, role, keep) of the grid, checked against the model (clear errors, nothing run)."""
    refs = src.matrices()
    all_layers = sorted({r.layer for r in refs if r.layer is not None})
    if cfg.grid == "paper":
        layers, keeps, roles = late_layers(src), PAPER_KEEPS, list(DEFAULT_ROLES)
    else:
        layers = all_layers if cfg.layers is None else sorted(set(cfg.layers))
        keeps, roles = cfg.keeps, [canonical_role(r) for r in cfg.roles]
    if not layers:
        raise LmscopeError("no layers to search")
    if not roles or not keeps:
        raise LmscopeError("give at least one role and one keep value")
    grid = [Reduction(L, role, float(k)) for L in layers for role in roles for k in keeps]
    for L in layers:  # checks layers, roles and keeps, one reduction per (layer, role)
        check_reductions(src, [Reduction(L, role, k) for role in roles for k in keeps[:1]])
    for k in keeps:
        kept_rank((1, 1), float(k))
    if len(set(keeps)) != len(keeps):
        raise LmscopeError("keep values repeat")
    return grid


def laser_search(model: str | ModelSource, task: str | EvalTask, cfg: SearchConfig | None = None,
                 quiet: bool | None = None, log=None) -> LaserSearchResult:
    """Search the grid of ``cfg`` on ``task``; see the module docstring."""
    cfg = cfg or SearchConfig()
    log = log or (lambda msg: None)
    src = open_model(model)
    src.require_lm_head("a LASER search")
    check_top_k(src, cfg.top_k)
    task = load_eval_task(task) if not isinstance(task, EvalTask) else task
    task = task.sample(cfg.limit, cfg.seed + 1, minimum=2)
    grid = plan_search(src, task, cfg)
    tok = src.load_tokenizer()
    n_given = len(task)
    task, _ = scored_task(task, tok, cfg.scoring)
    if len(task) < 2:
        raise LmscopeError(f"{cfg.scoring} scoring keeps {len(task)} of {n_given} examples; a search needs at least 2")
    if cfg.scoring != "first-token":
        log(f"{cfg.scoring} scoring keeps {len(task)} of {n_given} examples")
    val_idx, test_idx = split_indices(len(task), cfg.val_fraction, cfg.seed)
    if len(val_idx) < 200:
        log(f"note: {len(val_idx)} validation examples; picking the best of {len(grid)} configs on so few tends to "
            "fit noise (raise --val-fraction or use more examples)")
    device = resolve_device(cfg.device)

    model_hf = src.load_model().to(device).eval()
    val, test = task.subset(val_idx), task.subset(test_idx)
    scorer = TaskScorer(model_hf, tok, val, batch_size=cfg.batch_size, top_k=cfg.top_k, quiet=quiet)
    test_scorer = TaskScorer(model_hf, tok, test, batch_size=cfg.batch_size, top_k=cfg.top_k, quiet=quiet)
    editor = WeightEditor(model_hf, src)
    svds = SVDCache()

    key = "|".join([_model_identity(src), task.fingerprint(), json.dumps(val_idx), str(cfg.top_k), device.type,
                    torch.__version__] + ([cfg.scoring] if cfg.scoring != "first-token" else []))
    store = _Progress(key, cfg.resume)
    base_val = scorer.score()
    base_row = _summary_row(base_val)
    done = sum(store.get(r.layer, canonical_role(r.role), r.keep) is not None for r in grid)
    if done:
        log(f"resuming: {done} of {len(grid)} configs already scored ({store.path})")

    t0 = time.perf_counter()
    rows, n_scored = score_grid(scorer, editor, svds, grid, store=store, quiet=quiet)
    table = [_with_deltas(row, base_row) for row in rows]
    seconds = time.perf_counter() - t0
    scorer.clear_prefix()

    best_row = _best(table)
    base_test = test_scorer.score()
    per_example = {"base": base_test.rows(test)}
    best = None
    if best_row is not None:
        best_red = Reduction(best_row["layer"], best_row["role"], best_row["keep"])
        prev = editor.set(laser_matrix(editor, svds, best_red))
        try:
            best_test = test_scorer.score()
        finally:
            editor.undo(prev)
        best = {**{k: best_row[k] for k in ("layer", "role", "keep", "rank")},
                "val": _strip(best_row), "test": _summary_row(best_test)}
        per_example["best"] = best_test.rows(test)

    composed = None
    if cfg.compose and best_row is not None:
        composed = compose(editor, svds, scorer, table, base_row, quiet=quiet)
        prev = editor.set(_compose_edits(editor, svds, composed["reductions"]))
        try:
            comp_test = test_scorer.score()
        finally:
            editor.undo(prev)
        composed["test"] = _summary_row(comp_test)
        per_example["composed"] = comp_test.rows(test)

    return LaserSearchResult(
        model=src.spec, task=task.name, kind=task.kind,
        config={**asdict(cfg), "layers": sorted({r.layer for r in grid}), "roles": sorted({canonical_role(r.role)
                                                                                          for r in grid}),
                "keeps": sorted({r.keep for r in grid}, reverse=True), "device": device.type,
                "examples_given": n_given, "examples_scored": len(task)},
        n_val=len(val), n_test=len(test), base={"val": base_row, "test": _summary_row(base_test)},
        table=table, best=best, composed=composed,
        timing={"configs": len(grid), "scored_now": n_scored, "seconds": seconds,
                "configs_per_second": n_scored / seconds if n_scored and seconds > 0 else None},
        per_example=per_example,
    )


def score_grid(scorer: TaskScorer, editor: WeightEditor, svds: SVDCache, grid: list[Reduction],
               store: _Progress | None = None, quiet: bool | None = None, keep_scores: bool = False):
    """Score each reduction of ``grid`` alone; return (summary rows in grid order, number scored now).

    Each matrix is decomposed once; a reduction at layer L replays the stored input of layer L.
    With ``keep_scores`` each row also carries its per-example :class:`Scores` under ``"scores"``.
    """
    rows, n_scored = [], 0
    bar = progress(total=len(grid), desc="LASER search", quiet=quiet)
    current: tuple | None = None  # (key, W, svd) of the matrix being reduced
    try:
        for red in grid:
            role = canonical_role(red.role)
            row = store.get(red.layer, role, red.keep) if store is not None else None
            if row is None:
                if red.layer > 0 and not scorer.has_prefix(red.layer):
                    # walk up: keep only the stored input nearest below (memory of ~2 layers' activations)
                    below = [L for L in range(red.layer) if scorer.has_prefix(L)]
                    scorer.drop_prefix(max(below) if below else 0)
                    scorer.prepare_prefix([red.layer])
                if current is None or current[0] != red.key:
                    W = editor.get(red.key)
                    current = (red.key, W, svds.full(W))
                _, W, svd = current
                k = kept_rank(tuple(W.shape), red.keep)
                prev = editor.set({red.key: low_rank(svd, k).to(W.dtype)})
                try:
                    s = scorer.score(start_layer=red.layer)
                finally:
                    editor.undo(prev)
                n_scored += 1
                row = {"layer": red.layer, "role": role, "keep": red.keep, "rank": k,
                       "full_rank": min(W.shape), **_summary_row(s)}
                if store is not None:
                    store.add(row)
                if keep_scores:
                    row = {**row, "scores": s}
            rows.append(row)
            bar.update(1)
    finally:
        bar.close()
    scorer.clear_prefix()
    return rows, n_scored


def laser_matrix(editor: WeightEditor, svds: SVDCache, red: Reduction) -> dict[str, torch.Tensor]:
    W = editor.get(red.key)
    return {red.key: low_rank(svds.full(W), kept_rank(tuple(W.shape), red.keep)).to(W.dtype)}


def _compose_edits(editor, svds, reductions: list[dict]) -> dict[str, torch.Tensor]:
    out = {}
    for r in reductions:
        out.update(laser_matrix(editor, svds, Reduction(r["layer"], r["role"], r["keep"])))
    return out


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("layer", "role", "keep", "rank", "full_rank")
            and not k.startswith("d_")}


def _with_deltas(row: dict, base: dict) -> dict:
    out = dict(row)
    if base.get("accuracy") is not None and row.get("accuracy") is not None:
        out["d_accuracy"] = row["accuracy"] - base["accuracy"]
    out["d_logloss"] = row["logloss"] - base["logloss"]
    return out


def _best(table: list[dict]) -> dict | None:
    best = None
    for row in table:  # grid order breaks exact ties: earlier layer, role, larger keep first
        if best is None or better(row, best):
            best = row
    return best


def compose(editor: WeightEditor, svds: SVDCache, scorer: TaskScorer, table: list[dict], base: dict,
            quiet: bool | None = None) -> dict:
    """Greedy composition on the validation split.

    Candidates: for each (layer, role), its best keep from the search, if that alone beats the
    unmodified model. They are tried from the last layer down (within a layer, best first); each is
    added on top of the reductions kept so far and kept only when validation improves, otherwise
    reverted exactly. Because every kept edit sits at or above the layer being tried, the stored
    hidden states entering that layer stay valid.
    """
    per_matrix: dict[tuple, dict] = {}
    for row in table:
        k = (row["layer"], row["role"])
        if k not in per_matrix or better(row, per_matrix[k]):
            per_matrix[k] = row
    cands = [r for r in per_matrix.values() if better(r, base)]
    cands.sort(key=lambda r: (-r["layer"], r.get("d_accuracy") is not None and -r["d_accuracy"], r["logloss"]))
    current = dict(base)
    kept: list[dict] = []
    undo_stack = []
    trials = []
    scorer.prepare_prefix({r["layer"] for r in cands})
    for r in progress(cands, desc="composing", quiet=quiet):
        red = Reduction(r["layer"], r["role"], r["keep"])
        prev = editor.set(laser_matrix(editor, svds, red))
        s = _summary_row(scorer.score(start_layer=red.layer))
        accept = better(s, current)
        trials.append({"layer": red.layer, "role": r["role"], "keep": red.keep, "val": s, "kept": accept})
        if accept:
            current = s
            kept.append({"layer": red.layer, "role": r["role"], "keep": red.keep, "rank": r["rank"]})
            undo_stack.append(prev)
        else:
            editor.undo(prev)
    for prev in reversed(undo_stack):  # leave the model as it was given
        editor.undo(prev)
    scorer.clear_prefix()
    return {"reductions": kept, "val": current, "trials": trials}
