"""The three LaMPP benchmarks, run end to end: generate the data, ask the language model, compare methods.

Every benchmark compares the same methods: ``no prior`` (the task model and its training data
alone), ``uniform prior`` (the null prior), ``LM prior`` (the language model's tables in the
graphical model), ``model chaining`` (the language model asked directly, its answer used as is),
and ``true prior`` (the generator's own tables: what a perfect prior would give, for reference).
All the language-model requests of one benchmark go in one ``score`` call. :class:`PriorsConfig`
holds the options (how the model is asked, the classifier temperature, the grids chosen on
validation data); its defaults follow the LaMPP reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmscope.errors import LmscopeError
from lmscope.priors import actions, navigation, segmentation
from lmscope.priors.queries import PriorTable, query_priors

METHODS = ("no prior", "uniform prior", "LM prior", "model chaining", "true prior")
SIZES = ("small", "default")
QUERY_MODES = ("reference", "next-token")


@dataclass(frozen=True)
class PriorsConfig:
    """How the benchmarks ask the model and set their free parameters.

    ``query``: ``reference`` asks as the LaMPP reference does (labels: binary plausible / implausible
    questions after worked examples, tables used as given; actions: worked tasks, then the task's
    actions listed, "The first step is" / "The step after X is"); ``next-token`` is the older way
    (p(object | "The {room} has a"), calibrated; "To {task}, the first step is to"). Object search
    asks p(room | "The {object} is in the") either way.
    ``temperature``: the classifier temperature T of label correction (the reference's 9), with
    ``temperatures`` the grid of the sensitivity rows, chosen on the validation scenes.
    ``room_sharpness``: κ of the room posterior (the reference's 10).
    ``action_alpha``: the Dirichlet weight α of the action prior (the reference's 10).
    ``search_alphas``, ``validation_seeds``: object search's α is chosen per method from this grid by
    the fewest rooms visited on the validation seeds, which cannot be run as test seeds.
    """

    query: str = "reference"
    temperature: float = segmentation.REFERENCE_TEMPERATURE
    temperatures: tuple[float, ...] = segmentation.TEMPERATURES
    room_sharpness: float = segmentation.ROOM_SHARPNESS
    action_alpha: float = actions.ALPHA
    search_alphas: tuple[float, ...] = navigation.ALPHAS
    validation_seeds: tuple[int, ...] = navigation.VALIDATION_SEEDS

    def __post_init__(self):
        if self.query not in QUERY_MODES:
            raise LmscopeError(f"unknown query mode {self.query!r}; choose one of {', '.join(QUERY_MODES)}")
        for name in ("temperature", "room_sharpness", "action_alpha"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise LmscopeError(f"{name} must be a positive number, got {v!r}")
        for name in ("temperatures", "search_alphas"):
            v = tuple(getattr(self, name))
            if not v or not all(isinstance(x, (int, float)) and x > 0 for x in v):
                raise LmscopeError(f"{name} must be positive numbers, got {v!r}")
            object.__setattr__(self, name, tuple(float(x) for x in v))
        seeds = tuple(self.validation_seeds)
        if not seeds or not all(isinstance(x, int) and x >= 0 for x in seeds):
            raise LmscopeError(f"validation_seeds must be non-negative integers, got {seeds!r}")
        object.__setattr__(self, "validation_seeds", seeds)

    def to_dict(self) -> dict:
        return {"query": self.query, "temperature": self.temperature, "temperatures": list(self.temperatures),
                "room_sharpness": self.room_sharpness, "action_alpha": self.action_alpha,
                "search_alphas": list(self.search_alphas), "validation_seeds": list(self.validation_seeds)}


@dataclass
class BenchmarkResult:
    """Scores of every method on every slice (long rows), the LM's tables, and facts about the run."""

    benchmark: str
    seed: int
    size: str
    lm: dict | None
    rows: list[dict]
    tables: dict[str, PriorTable] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """Long form: method, slice, metric, value, n."""
        return pd.DataFrame(self.rows, columns=["method", "slice", "metric", "value", "n"])

    def wide(self) -> pd.DataFrame:
        """One row per method, one column per ``metric [slice]``."""
        t = self.table
        cols = list(dict.fromkeys(f"{m} [{s}]" for m, s in zip(t["metric"], t["slice"])))
        t = t.assign(column=[f"{m} [{s}]" for m, s in zip(t["metric"], t["slice"])])
        w = t.pivot_table(index="method", columns="column", values="value", aggfunc="first", dropna=False)
        order = [m for m in METHODS if m in w.index] + [m for m in w.index if m not in METHODS]
        return w.reindex(index=order, columns=cols).reset_index()

    def value(self, method: str, metric: str, slice: str = "all") -> float:
        for r in self.rows:
            if r["method"] == method and r["metric"] == metric and r["slice"] == slice:
                return r["value"]
        raise KeyError((method, metric, slice))

    def summary_lines(self) -> list[str]:
        lm = (self.lm or {}).get("spec", "no language model")
        lines = [f"{self.benchmark} ({BENCHMARKS[self.benchmark].description}); seed {self.seed}, size {self.size}, "
                 f"LM: {lm}", ""]
        lines.append(self.wide().to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–"))
        for k, v in self.info.get("notes", {}).items():
            lines.append(f"{k}: {v}")
        if "seconds" in self.info:
            s = self.info["seconds"]
            lines.append(f"time: {s['total']:.1f} s ({s['lm']:.1f} s in {self.info.get('lm_requests', 0)} "
                         "language-model requests)")
        return lines

    def to_dict(self) -> dict:
        return {"benchmark": self.benchmark, "seed": self.seed, "size": self.size, "lm": self.lm, "rows": self.rows,
                "info": self.info, "tables": {k: t.to_dict() for k, t in self.tables.items()}}


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable


def _ask(lm, queries) -> tuple[dict[str, PriorTable], float, int]:
    t0 = time.perf_counter()
    tables = query_priors(lm, queries)
    return {t.name: t for t in tables}, time.perf_counter() - t0, sum(q.size() for q in queries)


def _identity(lm) -> dict | None:
    if lm is None:
        return None
    try:
        ident = dict(lm.identity())
    except Exception:  # noqa: BLE001 - provenance only
        ident = {}
    ident.setdefault("spec", getattr(lm, "spec", type(lm).__name__))
    return ident


def run_labels(lm=None, seed: int = 0, size: str = "default", config: PriorsConfig | None = None
               ) -> BenchmarkResult:
    """Label correction (rooms and objects): accuracy of region labels, on rare and common objects.

    Every prior is scored at the fixed temperature ``config.temperature``; the LM and true priors also
    at the temperature of ``config.temperatures`` best on the validation scenes (the rows
    "... (T from validation)")."""
    cfg = config or PriorsConfig()
    sg = segmentation
    k = cfg.room_sharpness
    bench = sg.make_label_benchmark(seed, size)
    rows = sg.classifier_rows(bench)
    info: dict = {"settings": bench.settings, "rare_objects": list(bench.rare), "temperatures": {}}

    def score(C, S, method: str, grid: bool = False):
        nonlocal rows
        r, i = sg.evaluate_prior(bench, C, S, method, (cfg.temperature,), k)
        rows += r
        info["temperatures"][method] = i["temperature"]
        if grid:
            name = f"{method} (T from validation)"
            r, i = sg.evaluate_prior(bench, C, S, name, cfg.temperatures, k)
            rows += r
            info["temperatures"][name] = i["temperature"]

    score(*sg.uniform_tables(bench), "uniform prior")
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        chain_q, listings = sg.chaining_query(bench)
        tables, lm_s, n_req = _ask(lm, sg.label_queries(bench, cfg.query) + [chain_q])
        C, S = sg.tables_to_arrays(bench, tables, calibrate=cfg.query == "next-token")
        score(C, S, "LM prior", grid=True)
        rows += sg.chaining_rows(bench, tables["chaining-room"], listings, C)
        truth = sg.true_tables(bench)[0]
        info["objects_whose_likeliest_room_holds_them"] = float(np.mean(truth[np.arange(len(C)), C.argmax(axis=1)] > 0))
    score(*sg.true_tables(bench), "true prior", grid=True)
    info["notes"] = {"temperature (fixed, or chosen on the validation scenes)": ", ".join(
        f"{k} {v:g}" for k, v in info["temperatures"].items())}
    return BenchmarkResult("labels", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                "lm_requests": n_req,
                                                                                "config": cfg.to_dict()})


def run_actions(lm=None, seed: int = 0, size: str = "default", config: PriorsConfig | None = None
                ) -> BenchmarkResult:
    """Action segmentation with an HSMM: frame accuracy and edit score, in and out of distribution."""
    cfg = config or PriorsConfig()
    ac = actions
    a = cfg.action_alpha
    bench = ac.make_action_benchmark(seed, size)
    models = ac.fit_task_models(bench)
    rows = ac.evaluate_prior(bench, models, None, "no prior")
    rows += ac.evaluate_prior(bench, models, ac.uniform_prior(bench), "uniform prior", alpha=a)
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        tables, lm_s, n_req = _ask(lm, ac.action_queries(bench, cfg.query))
        prior = ac.tables_to_prior(bench, tables)
        rows += ac.evaluate_prior(bench, models, prior, "LM prior", alpha=a)
        rows += ac.chaining_rows(bench, models, prior)
    rows += ac.evaluate_prior(bench, models, ac.true_prior(bench), "true prior", alpha=a)
    held = bench.held_out()
    info = {"settings": bench.settings, "held_out": held, "alpha": a, "config": cfg.to_dict(),
            "notes": {"held out of training": "; ".join(f"{t}: {', '.join(v)}" for t, v in held.items())}}
    return BenchmarkResult("actions", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                 "lm_requests": n_req})


def run_search(lm=None, seed: int = 0, size: str = "default", config: PriorsConfig | None = None
               ) -> BenchmarkResult:
    """Object search in simulated houses: rooms visited until the target is found. α is chosen per
    method on the validation seeds (see :func:`lmscope.priors.navigation.choose_alpha`)."""
    cfg = config or PriorsConfig()
    nv = navigation
    if seed in cfg.validation_seeds:
        raise LmscopeError(f"seed {seed} is a validation seed of the search benchmark (α is chosen on seeds "
                           f"{', '.join(map(str, cfg.validation_seeds))}); run another seed")
    bench = nv.make_search_benchmark(seed, size)
    alphas: dict[str, float] = {}

    def score(prior, method: str) -> list[dict]:
        a, _ = nv.choose_alpha(prior, size, cfg.search_alphas, cfg.validation_seeds)
        alphas[method] = a
        return nv.evaluate_prior(bench, prior, method, alpha=a)

    rows = nv.evaluate_prior(bench, None, "no prior")
    rows += score(np.ones_like(bench.train_counts), "uniform prior")
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        tables, lm_s, n_req = _ask(lm, nv.search_queries(bench))
        rows += score(nv.location_table(bench, tables), "LM prior")
        rows += nv.chaining_rows(bench, tables["near"])
    from lmscope.priors.world import object_room_table

    rows += score(object_room_table(bench.objects, bench.rooms), "true prior")
    info = {"settings": bench.settings, "rare_objects": list(bench.rare), "alpha": alphas, "config": cfg.to_dict(),
            "notes": {"houses": f"{nv.ROOMS_PER_HOUSE} rooms, {nv.LANDMARKS} landmark(s) per room; "
                                f"{len(bench.episodes)} searches, half for rare objects; "
                                f"{bench.settings['n_train_houses']} training houses give the counts",
                      "α chosen on the validation seeds " + ", ".join(map(str, cfg.validation_seeds)):
                          ", ".join(f"{k} {v:g}" for k, v in alphas.items())}}
    return BenchmarkResult("search", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                "lm_requests": n_req})


BENCHMARKS: dict[str, Benchmark] = {
    "labels": Benchmark("labels", "label correction: a room-object prior fixes a biased region classifier",
                        run_labels),
    "actions": Benchmark("actions", "action segmentation: an HSMM with a prior on the order of steps",
                         run_actions),
    "search": Benchmark("search", "object search: which room of a house to look in first", run_search),
}


def run_benchmark(name: str, lm=None, *, seed: int = 0, size: str = "default", config: PriorsConfig | None = None
                  ) -> BenchmarkResult:
    """Run one benchmark; ``lm`` (a :class:`lmscope.lm.base.LanguageModel`) may be None (no LM rows);
    ``config`` defaults to the reference's settings (:class:`PriorsConfig`)."""
    if name not in BENCHMARKS:
        raise LmscopeError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    if size not in SIZES:
        raise LmscopeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    t0 = time.perf_counter()
    res = BENCHMARKS[name].run(lm, seed, size, config)
    res.info["seconds"] = {"total": time.perf_counter() - t0, "lm": res.info.pop("lm_seconds", 0.0)}
    return res
