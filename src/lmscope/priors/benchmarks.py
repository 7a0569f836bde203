"""The three LaMPP benchmarks, run end to end: generate the data, ask the language model, compare methods.

Every benchmark compares the same methods: ``no prior`` (the task model and its training data
alone), ``uniform prior`` (the null prior), ``LM prior`` (the language model's tables in the
graphical model), ``model chaining`` (the language model asked directly, its answer used as is),
and ``true prior`` (the generator's own tables: what a perfect prior would give, for reference).
All the language-model requests of one benchmark go in one ``score`` call.
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


def run_labels(lm=None, seed: int = 0, size: str = "default") -> BenchmarkResult:
    """Label correction (rooms and objects): accuracy of region labels, on rare and common objects."""
    sg = segmentation
    bench = sg.make_label_benchmark(seed, size)
    rows = sg.classifier_rows(bench)
    info: dict = {"settings": bench.settings, "rare_objects": list(bench.rare), "temperatures": {}}
    r, i = sg.evaluate_prior(bench, *sg.uniform_tables(bench), "uniform prior")
    rows += r
    info["temperatures"]["uniform prior"] = i["temperature"]
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        chain_q, listings = sg.chaining_query(bench)
        tables, lm_s, n_req = _ask(lm, sg.label_queries(bench) + [chain_q])
        C, S = sg.tables_to_arrays(bench, tables)
        r, i = sg.evaluate_prior(bench, C, S, "LM prior")
        rows += r
        info["temperatures"]["LM prior"] = i["temperature"]
        rows += sg.chaining_rows(bench, tables["chaining-room"], listings, C)
        truth = sg.true_tables(bench)[0]
        info["objects_whose_likeliest_room_holds_them"] = float(np.mean(truth[np.arange(len(C)), C.argmax(axis=1)] > 0))
    r, i = sg.evaluate_prior(bench, *sg.true_tables(bench), "true prior")
    rows += r
    info["temperatures"]["true prior"] = i["temperature"]
    info["notes"] = {"temperature chosen on the validation scenes": ", ".join(
        f"{k} {v:g}" for k, v in info["temperatures"].items())}
    return BenchmarkResult("labels", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                "lm_requests": n_req})


def run_actions(lm=None, seed: int = 0, size: str = "default") -> BenchmarkResult:
    """Action segmentation with an HSMM: frame accuracy and edit score, in and out of distribution."""
    ac = actions
    bench = ac.make_action_benchmark(seed, size)
    models = ac.fit_task_models(bench)
    rows = ac.evaluate_prior(bench, models, None, "no prior")
    rows += ac.evaluate_prior(bench, models, ac.uniform_prior(bench), "uniform prior")
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        tables, lm_s, n_req = _ask(lm, ac.action_queries(bench))
        prior = ac.tables_to_prior(bench, tables)
        rows += ac.evaluate_prior(bench, models, prior, "LM prior")
        rows += ac.chaining_rows(bench, models, prior)
    rows += ac.evaluate_prior(bench, models, ac.true_prior(bench), "true prior")
    held = bench.held_out()
    info = {"settings": bench.settings, "held_out": held, "alpha": ac.ALPHA,
            "notes": {"held out of training": "; ".join(f"{t}: {', '.join(v)}" for t, v in held.items())}}
    return BenchmarkResult("actions", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                 "lm_requests": n_req})


def run_search(lm=None, seed: int = 0, size: str = "default") -> BenchmarkResult:
    """Object search in simulated houses: rooms visited until the target is found."""
    nv = navigation
    bench = nv.make_search_benchmark(seed, size)
    rows = nv.evaluate_prior(bench, None, "no prior")
    rows += nv.evaluate_prior(bench, np.ones_like(bench.train_counts), "uniform prior")
    tables, lm_s, n_req = {}, 0.0, 0
    if lm is not None:
        tables, lm_s, n_req = _ask(lm, nv.search_queries(bench))
        rows += nv.evaluate_prior(bench, nv.location_table(bench, tables), "LM prior")
        rows += nv.chaining_rows(bench, tables["near"])
    from lmscope.priors.world import object_room_table

    rows += nv.evaluate_prior(bench, object_room_table(bench.objects, bench.rooms), "true prior")
    info = {"settings": bench.settings, "rare_objects": list(bench.rare),
            "alpha": nv.ALPHA,
            "notes": {"houses": f"{nv.ROOMS_PER_HOUSE} rooms, {nv.LANDMARKS} landmark(s) per room; "
                                f"{len(bench.episodes)} searches, half for rare objects; "
                                f"{bench.settings['n_train_houses']} training houses give the counts"}}
    return BenchmarkResult("search", seed, size, _identity(lm), rows, tables, {**info, "lm_seconds": lm_s,
                                                                                "lm_requests": n_req})


BENCHMARKS: dict[str, Benchmark] = {
    "labels": Benchmark("labels", "label correction: a room-object prior fixes a biased region classifier",
                        run_labels),
    "actions": Benchmark("actions", "action segmentation: an HSMM with a prior on the order of steps",
                         run_actions),
    "search": Benchmark("search", "object search: which room of a house to look in first", run_search),
}


def run_benchmark(name: str, lm=None, *, seed: int = 0, size: str = "default") -> BenchmarkResult:
    """Run one benchmark; ``lm`` (a :class:`lmscope.lm.base.LanguageModel`) may be None (no LM rows)."""
    if name not in BENCHMARKS:
        raise LmscopeError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    if size not in SIZES:
        raise LmscopeError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    t0 = time.perf_counter()
    res = BENCHMARKS[name].run(lm, seed, size)
    res.info["seconds"] = {"total": time.perf_counter() - t0, "lm": res.info.pop("lm_seconds", 0.0)}
    return res
