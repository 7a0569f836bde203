"""LaMPP at CPU scale: language-model priors in three small graphical models, against no prior, a
uniform prior, model chaining and the true prior.

Runs ``lmscope priors run`` for the three benchmarks (label correction, HSMM action segmentation,
object search) over several seeds with one language model, adds ablations that reuse the model's
tables (no further queries), and writes docs/results/lampp.md (or --doc) with its figures. The
model's answers are kept in lmscope's LM cache, so a rerun costs only the benchmarks' own work.

    PYTHONPATH=src .venv/bin/python experiments/lampp.py                # SmolLM2-135M, a few minutes on 2 CPU cores
    PYTHONPATH=src .venv/bin/python experiments/lampp.py --lm http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B \\
        --doc docs/results/lampp-qwen2.5-7b.md                          # a stronger model behind a server
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope.lm import open_lm  # noqa: E402
from lmscope.priors import BENCHMARKS, METHODS, run_benchmark  # noqa: E402
from lmscope.priors import actions as ac  # noqa: E402
from lmscope.priors import navigation as nv  # noqa: E402
from lmscope.priors import segmentation as sg  # noqa: E402
from lmscope.priors.world import LOOK_ALIKE, ROOM_OBJECTS, object_room_table  # noqa: E402
from lmscope.report.plots import plot_method_bars  # noqa: E402

MAIN = {"labels": ("accuracy", ["all", "rare", "common"]), "actions": ("frame_accuracy", ["id", "ood"]),
        "search": ("success_at_1", ["all", "rare", "common"])}  # the metric of each benchmark's figure


def fmt(v: float, metric: str) -> str:
    if metric in ("edit_score", "rooms_visited"):
        return f"{v:.2f}" if metric == "rooms_visited" else f"{v:.1f}"
    return f"{100 * v:.1f}%"


def summarize(results) -> pd.DataFrame:
    """Mean, min and max over seeds per (method, slice, metric)."""
    t = pd.concat([r.table.assign(seed=r.seed) for r in results])
    g = t.groupby(["method", "slice", "metric"], sort=False)["value"]
    return pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max(), "n": t.groupby(
        ["method", "slice", "metric"], sort=False)["n"].first()}).reset_index()


def method_table(summary: pd.DataFrame, columns: list[tuple[str, str]], methods=METHODS) -> str:
    rows = []
    for m in methods:
        row = [m]
        for metric, sl in columns:
            s = summary[(summary["method"] == m) & (summary["metric"] == metric) & (summary["slice"] == sl)]
            if s.empty:
                row.append("–")
                continue
            s = s.iloc[0]
            spread = f" ({fmt(s['min'], metric)}–{fmt(s['max'], metric)})" if s["max"] > s["min"] else ""
            row.append(fmt(s["mean"], metric) + spread)
        rows.append(row)
    header = ["method"] + [f"{metric.replace('_', ' ')} [{sl}]" for metric, sl in columns]
    return md_table(header, rows)


def columns_of(summary: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(summary["metric"], summary["slice"])))


# ------------------------------------------------------------------------------------------------
# Ablations and prior quality (from the tables the model already gave)
# ------------------------------------------------------------------------------------------------
def label_ablations(res) -> list[dict]:
    bench = sg.make_label_benchmark(res.seed, res.size)
    C, S = sg.tables_to_arrays(bench, res.tables)
    Craw, Sraw = sg.tables_to_arrays(bench, res.tables, calibrate=False)
    Ct, St = sg.true_tables(bench)
    out = []
    for name, c, s in (("LM C and S, not calibrated", Craw, Sraw), ("LM C, true S", C, St),
                       ("true C, LM S", Ct, S), ("LM C, uniform S", C, np.full_like(S, 1 / len(S)))):
        out += sg.evaluate_prior(bench, c, s, name)[0]
    return out


def search_ablations(res) -> list[dict]:
    bench = nv.make_search_benchmark(res.seed, res.size)
    L = nv.location_table(bench, res.tables)
    out = nv.evaluate_prior(bench, L, "LM prior, α = 10", alpha=10.0)
    bench.train_counts[:] = 0
    out += nv.evaluate_prior(bench, L, "LM prior alone (no counts)")
    out += nv.evaluate_prior(bench, object_room_table(), "true prior alone (no counts)")
    return out


def action_ablations(res) -> list[dict]:
    bench = ac.make_action_benchmark(res.seed, res.size)
    models = ac.fit_task_models(bench)
    prior = ac.tables_to_prior(bench, res.tables)
    out = []
    for alpha in (1.0, 100.0):
        out += ac.evaluate_prior(bench, models, prior, f"LM prior, α = {alpha:g}", alpha=alpha)
    return out


def prior_quality(results: dict) -> list[list]:
    """How much of the generator's truth the model's tables hold (seed 0's tables; the queries do not
    depend on the seed)."""
    rows = []
    lab = results["labels"][0]
    bench = sg.make_label_benchmark(lab.seed, lab.size)
    C, S = sg.tables_to_arrays(bench, lab.tables)
    ok = [ROOM_OBJECTS[bench.rooms[int(np.argmax(C[i]))]].get(o, 0) > 0 for i, o in enumerate(bench.objects)]
    rows.append(["labels: co-occurrence C (calibrated)", "objects whose most likely room holds them",
                 f"{sum(ok)} / {len(ok)}", f"{np.mean([sum(1 for r in ROOM_OBJECTS.values() if o in r) / 6 for o in bench.objects]):.0%} by chance"])
    groups = {o: set(g) - {o} for g in LOOK_ALIKE for o in g}
    hits, n = 0, 0
    for i, o in enumerate(bench.objects):
        if o not in groups:
            continue
        row = S[i].copy()
        row[i] = -1
        hits += bench.objects[int(np.argmax(row))] in groups[o]
        n += 1
    rows.append(["labels: look-alike S (calibrated)", "objects whose top look-alike is a true one", f"{hits} / {n}",
                 f"{np.mean([len(groups[o]) / (len(bench.objects) - 1) for o in groups]):.0%} by chance"])
    se = results["search"][0]
    sb = nv.make_search_benchmark(se.seed, se.size)
    L = nv.location_table(sb, se.tables)
    ok = [ROOM_OBJECTS[sb.rooms[int(np.argmax(L[i]))]].get(o, 0) > 0 for i, o in enumerate(sb.objects)]
    rows.append(["search: location p(room \\| object)", "objects whose most likely room holds them", f"{sum(ok)} / {len(ok)}",
                 "–"])
    act = results["actions"][0]
    abench = ac.make_action_benchmark(act.seed, act.size)
    prior = ac.tables_to_prior(abench, act.tables)
    truth = ac.true_prior(abench)
    held = abench.held_out()
    seen_p, held_p, unif = [], [], []
    for task, acts in abench.tasks.items():
        K = len(acts)
        p = prior[task][1].copy()
        np.fill_diagonal(p, 0)
        p /= p.sum(axis=1, keepdims=True)
        t = truth[task][1]
        for a, b in zip(*np.nonzero(t)):
            pair = f"{acts[a]} → {acts[b]}"
            (held_p if pair in held[task] else seen_p).append(p[a, b])
        unif.append(1 / (K - 1))
    rows.append(["actions: p(next \\| previous, task)", "mean p of the scripts' transitions seen in training",
                 f"{np.mean(seen_p):.2f}", f"{np.mean(unif):.2f} uniform"])
    rows.append(["actions: p(next \\| previous, task)", "mean p of the held-out transitions", f"{np.mean(held_p):.2f}",
                 f"{np.mean(unif):.2f} uniform"])
    return rows


# ------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lm", default="local:smollm2-135m", help="language model spec (default local:smollm2-135m)")
    ap.add_argument("--seeds", default="0,1,2", help="benchmark seeds (default 0,1,2)")
    ap.add_argument("--size", default="default", choices=["small", "default"])
    ap.add_argument("--doc", default="docs/results/lampp.md")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    doc = Path(args.doc)
    figs = doc.parent / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    lm = open_lm(args.lm)
    results: dict[str, list] = {name: [] for name in BENCHMARKS}
    timings = {}
    try:
        for name in BENCHMARKS:
            t0 = time.perf_counter()
            for seed in seeds:
                res = run_benchmark(name, lm, seed=seed, size=args.size)
                results[name].append(res)
                print("\n".join(res.summary_lines()), flush=True)
            timings[name] = time.perf_counter() - t0
        stats = getattr(lm, "stats", None)
        cache = stats.to_dict() if stats is not None else None
    finally:
        lm.close()
    ablations = {"labels": [r for res in results["labels"] for r in label_ablations(res)],
                 "search": [r for res in results["search"] for r in search_ablations(res)],
                 "actions": [r for res in results["actions"] for r in action_ablations(res)]}
    write_doc(doc, args, seeds, results, ablations, timings, cache)
    print(f"wrote {doc}")
    return 0


def write_doc(doc: Path, args, seeds, results, ablations, timings, cache) -> None:
    tag = "" if args.doc == "docs/results/lampp.md" else f"-{doc.stem}"
    figs = doc.parent / "figures"
    st = {name: results[name][0].info["settings"] for name in BENCHMARKS}
    lm_spec = args.lm
    extra = (f" --lm '{lm_spec}'" if lm_spec != "local:smollm2-135m" else "") + \
        (f" --doc {args.doc}" if tag else "") + (f" --seeds {args.seeds}" if args.seeds != "0,1,2" else "")
    lines = [
        f"# LaMPP: language models as probabilistic priors ({lm_spec})",
        "",
        "*LaMPP: Language Models as Probabilistic Priors for Perception and Action* (Li, Chen, Sharma & "
        "Andreas, 2023) casts labeling and decision-making as inference in graphical models whose priors come "
        "from a language model, and reports gains on rare, out-of-distribution and structurally novel inputs "
        "(semantic segmentation, navigation, video action segmentation); its baseline is *model chaining* "
        "(asking the model directly and using the answer as is).",
        "",
        "Our version keeps the three graphical models and generates their data (seeded), so that every "
        "ground truth is known: see `lmscope priors list` and the docstrings of `lmscope.priors`. The "
        "perception models are simulated: a region classifier that confuses look-alike objects and "
        "rarely predicts objects rare in its training data; Gaussian frame features around per-action "
        "means (actions of the same kind of motion close together); a hallway view of one object per room.",
        "",
        "Regenerate this page:",
        "",
        "```",
        f"PYTHONPATH=src .venv/bin/python experiments/lampp.py{extra}",
        "```",
        "",
        "which runs, for each seed:",
        "",
        "```",
        *[f"lmscope priors run {name} --lm {lm_spec} --seed SEED" for name in BENCHMARKS],
        "```",
        "",
        f"Seeds {', '.join(map(str, seeds))}; size `{args.size}`. Every cell is the mean over the seeds, with "
        "the range when the seeds differ. The language model's tables do not depend on the seed (the same "
        "queries); the data do. Methods:",
        "",
        "- **no prior**: the task model and its training data alone (the classifier; counts of first steps and "
        f"transitions; counts of objects per room in {st['search']['n_train_houses']} training houses);",
        "- **uniform prior**: the null prior in the same graphical model (for labels it changes nothing, by "
        "construction; for actions and search it is add-α smoothing of the counts);",
        "- **LM prior**: the language model's tables in the graphical model;",
        "- **model chaining**: the language model asked directly, its answer used as is (labels: it names the "
        "room from the classifier's labels, then each region takes the classifier's top-3 candidate it finds "
        "likeliest there; actions: segments from the uniform-prior decoding, then it names each segment's "
        "action among the emission model's top 3, left to right; search: it is asked which seen object the "
        "target is usually near);",
        "- **true prior**: the generator's own tables in the graphical model, for reference (what a perfect "
        "prior gives).",
        "",
    ]
    descr = {
        "labels": ("Label correction", f"Region accuracy on the test scenes ({st['labels']['n_test']} scenes × {st['labels']['n_regions']} regions "
                   f"per seed; the temperature is chosen on {st['labels']['n_val']} validation scenes); rare "
                   "= objects the classifier saw at a tenth of the others' frequency (toaster, bathtub, pillow, "
                   "lawn mower, bookshelf). Room accuracy: the room the model infers. Prompts: C from "
                   "p(object | \"The {room} has a\"), S from p(object' | \"The {object} looks like a\"), each "
                   "calibrated (divided by the class's average over the inputs, then renormalized)."),
        "actions": ("Action segmentation (HSMM)", "Frame accuracy and edit score (100 · (1 − Levenshtein / "
                    f"longer length) on segment sequences) over {4 * st['actions']['n_test']} in-distribution and "
                    f"{4 * st['actions']['n_test']} out-of-distribution test videos per seed (4 tasks, "
                    f"{4 * st['actions']['n_train']} training videos). The out-of-distribution videos follow step orders never seen in "
                    "training (held-out first steps and transitions below). α = 10. Prompts: \"To {task}, the "
                    "first step is to\" and \"To {task}, after you {previous}, you\", each followed by the task's "
                    "actions."),
        "search": ("Object search", "Rooms visited until the target is found and success at the first room, over "
                   f"{st['search']['n_episodes']} searches per seed in 4-room houses (half for rare objects). α = 1 "
                   "(pseudo-counts α · 19 per kind of room), fixed after a look at α ∈ {0.1, 0.3, 1, 3} on seed 0, "
                   "which agreed within a point. Prompts: p(room | \"The {object} is in the\"); chaining: p(object | "
                   "\"The {target} is usually near the\")."),
    }
    for name in BENCHMARKS:
        res = results[name]
        summary = summarize(res)
        title, text = descr[name]
        metric, _ = MAIN[name]
        png = figs / f"{doc.stem}-{name}.png"
        mean_rows = summary.rename(columns={"mean": "value"})
        plot_method_bars(mean_rows, metric, png, title=f"{name}: {metric.replace('_', ' ')} (mean of {len(seeds)} seeds)")
        lines += [f"## {title}", "", text, "", method_table(summary, columns_of(summary)), "",
                  f"![{name}](figures/{png.name})", ""]
        if name == "actions":
            held = res[0].info["held_out"]
            lines += ["Held out of training: " + "; ".join(f"*{t}*: {', '.join(v)}" for t, v in held.items()) + ".",
                      ""]
        if name == "labels":
            temps = pd.DataFrame([r.info["temperatures"] for r in res])
            lines += ["Temperature chosen on the validation scenes per seed: " + "; ".join(
                f"{c} {', '.join(f'{v:g}' for v in temps[c])}" for c in temps.columns) + ".", ""]
        abl = summarize_rows(ablations[name])
        lines += ["Ablations (the same tables, no further queries):", "",
                  method_table(abl, columns_of(abl), methods=list(dict.fromkeys(abl["method"]))), ""]
    lines += ["## How much the model knows", "",
              "The model's tables against the generator's truth:", "",
              md_table(["table", "check", "model", "baseline"], prior_quality(results)), ""]
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    hits = f"; LM cache {cache['hits']} hits, {cache['misses']} computed" if cache else ""
    lines += ["## Cost", "", f"Wall time of this run ({len(seeds)} seeds each): {secs}{hits}. "
              "Language-model time of seed 0 in this run (answers already in the LM cache cost nothing): "
              + ", ".join(f"{k} {results[k][0].info['seconds']['lm']:.0f} s for "
                          f"{results[k][0].info['lm_requests']} prompts" for k in BENCHMARKS)
              + ". Later seeds reuse the cached answers except for the prompts that depend on the data "
                "(labels' chaining prompts, one per scene).", ""]
    lines += ["## A stronger model", "",
              "Any backend of `lmscope.lm` runs the same benchmarks. Scoring needs prompt log-probabilities, so "
              "a server must expose an OpenAI-compatible *completions* endpoint that returns them (vLLM, "
              "llama.cpp's server); chat-only endpoints cannot score. For example:", "",
              "```",
              "vllm serve Qwen/Qwen2.5-7B --port 8000        # on the machine with the GPU",
              "lmscope priors run all --lm 'http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B' --out lampp-qwen",
              "PYTHONPATH=src .venv/bin/python experiments/lampp.py --lm 'http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B' \\",
              "    --doc docs/results/lampp-qwen2.5-7b.md",
              "```", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


def summarize_rows(rows: list[dict]) -> pd.DataFrame:
    t = pd.DataFrame(rows)
    g = t.groupby(["method", "slice", "metric"], sort=False)["value"]
    return pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max()}).reset_index()


if __name__ == "__main__":
    sys.exit(main())
