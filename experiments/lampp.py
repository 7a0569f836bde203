"""LaMPP at CPU scale: language-model priors in three small graphical models, against no prior, a
uniform prior, model chaining and the true prior, with the model asked as the LaMPP reference asks it.

Runs ``lmscope priors run`` for the three benchmarks (label correction, HSMM action segmentation,
object search) over several seeds with one language model, adds ablations that reuse the model's
tables (and the older next-token prompts, asked once), and writes docs/results/lampp.md (or --doc)
with its figures. The model's answers are kept in lmscope's LM cache, so a rerun costs only the
benchmarks' own work. Every cell is the mean over the seeds with a 95 % t-interval over the seeds;
the model's tables do not depend on the seed, so every seed shares one set of them.

    PYTHONPATH=src .venv/bin/python experiments/lampp.py                # SmolLM2-135M, ~10 minutes on 2 CPU cores
    PYTHONPATH=src .venv/bin/python experiments/lampp.py --lm http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B \\
        --doc docs/results/lampp-qwen2.5-7b.md                          # a stronger model behind a server
"""

from __future__ import annotations

import argparse
import dataclasses
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
from scipy import stats  # noqa: E402

from lmscope.lm import open_lm  # noqa: E402
from lmscope.priors import BENCHMARKS, METHODS, PriorsConfig, query_priors, run_benchmark  # noqa: E402
from lmscope.priors import actions as ac  # noqa: E402
from lmscope.priors import navigation as nv  # noqa: E402
from lmscope.priors import segmentation as sg  # noqa: E402
from lmscope.priors.world import LOOK_ALIKE, ROOM_OBJECTS, object_room_table  # noqa: E402
from lmscope.report.plots import plot_method_bars  # noqa: E402

MAIN = {"labels": ("accuracy", ["all", "rare", "common"]), "actions": ("frame_accuracy", ["id", "ood"]),
        "search": ("success_at_1", ["all", "rare", "common"])}  # the metric of each benchmark's figure
DEFAULT_SEEDS = "0,1,2,3,4,5,6,7,8,9"


def fmt(v: float, metric: str) -> str:
    if metric == "rooms_visited":
        return f"{v:.2f}"
    if metric == "edit_score":
        return f"{v:.1f}"
    return f"{100 * v:.1f}"


def unit(metric: str) -> str:
    return "" if metric in ("rooms_visited", "edit_score") else " %"


def interval(values) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of the per-seed values (the mean alone for one seed)."""
    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - h, m + h


RANGE = {"rooms_visited": (1.0, 4.0), "edit_score": (0.0, 100.0)}  # else a fraction in [0, 1]


def summarize_rows(rows: list[dict]) -> pd.DataFrame:
    """Mean and 95 % interval over seeds per (method, slice, metric), the interval clipped to the metric's
    range; rows carry a ``seed``."""
    t = pd.DataFrame(rows)
    out = []
    for (m, s, k), g in t.groupby(["method", "slice", "metric"], sort=False):
        mean, lo, hi = interval(g["value"])
        a, b = RANGE.get(k, (0.0, 1.0))
        lo, hi = max(lo, a), min(hi, b)
        out.append({"method": m, "slice": s, "metric": k, "mean": mean, "lo": lo, "hi": hi, "seeds": len(g)})
    return pd.DataFrame(out)


def method_table(summary: pd.DataFrame, methods=None) -> str:
    methods = methods or list(dict.fromkeys(summary["method"]))
    columns = list(dict.fromkeys(zip(summary["metric"], summary["slice"])))
    rows = []
    for m in methods:
        row = [m]
        for metric, sl in columns:
            s = summary[(summary["method"] == m) & (summary["metric"] == metric) & (summary["slice"] == sl)]
            if s.empty:
                row.append("–")
                continue
            s = s.iloc[0]
            ci = f" [{fmt(s['lo'], metric)}, {fmt(s['hi'], metric)}]" if s["hi"] > s["lo"] else ""
            row.append(fmt(s["mean"], metric) + ci)
        rows.append(row)
    header = ["method"] + [f"{metric.replace('_', ' ')}{unit(metric)} [{sl}]" for metric, sl in columns]
    return md_table(header, rows)


def seeded(res, rows: list[dict]) -> list[dict]:
    return [{**r, "seed": res.seed} for r in rows]


def auc(pos, neg) -> float:
    """P(a true statement's score > a false one's), ties counting a half."""
    pos, neg = np.asarray(pos, dtype=float)[:, None], np.asarray(neg, dtype=float)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


# ------------------------------------------------------------------------------------------------
# Ablations (the same tables, or prompts asked once: none depends on the seed)
# ------------------------------------------------------------------------------------------------
def label_ablations(res, older: dict) -> list[dict]:
    bench = sg.make_label_benchmark(res.seed, res.size)
    C, S = sg.tables_to_arrays(bench, res.tables)
    Cold, Sold = sg.tables_to_arrays(bench, older, calibrate=True)
    Ct, St = sg.true_tables(bench)
    out = []
    for name, c, s, temps in (("older next-token query, calibrated, T = 9", Cold, Sold, (9.0,)),
                              ("older next-token query, calibrated, T from validation", Cold, Sold, sg.TEMPERATURES),
                              ("LM C, true S (T = 9)", C, St, (9.0,)), ("true C, LM S (T = 9)", Ct, S, (9.0,)),
                              ("LM prior, κ = 1 (T = 9)", C, S, None)):
        if temps is None:
            out += sg.evaluate_prior(bench, c, s, name, (9.0,), sharpness=1.0)[0]
        else:
            out += sg.evaluate_prior(bench, c, s, name, temps)[0]
    return seeded(res, out)


def action_ablations(res, older: dict) -> list[dict]:
    bench = ac.make_action_benchmark(res.seed, res.size)
    models = ac.fit_task_models(bench)
    prior = ac.tables_to_prior(bench, res.tables)
    out = []
    for alpha in (1.0, 100.0):
        out += ac.evaluate_prior(bench, models, prior, f"LM prior, α = {alpha:g}", alpha=alpha)
    out += ac.evaluate_prior(bench, models, ac.tables_to_prior(bench, older), "older next-token prompts, α = 10")
    return seeded(res, out)


def search_ablations(res) -> list[dict]:
    bench = nv.make_search_benchmark(res.seed, res.size)
    L = nv.location_table(bench, res.tables)
    out = nv.evaluate_prior(bench, L, "LM prior, α = 1 (fixed, the earlier setting)", alpha=1.0)
    bench.train_counts[:] = 0
    out += nv.evaluate_prior(bench, L, "LM prior alone (no counts)")
    out += nv.evaluate_prior(bench, object_room_table(), "true prior alone (no counts)")
    return seeded(res, out)


# ------------------------------------------------------------------------------------------------
# How much the model knows
# ------------------------------------------------------------------------------------------------
def knowledge(results: dict, extra: dict) -> list[list]:
    """The model's tables against the generator's truth (seed 0's tables; every seed has the same)."""
    rows = []
    lab = results["labels"][0]
    bench = sg.make_label_benchmark(lab.seed, lab.size)
    truth = object_room_table(bench.objects, bench.rooms) > 0

    def c_rows(C, what):
        ok = truth[np.arange(len(C)), C.argmax(1)]
        return [[f"labels: C, {what}", "AUC: true vs false (room, object) statements", f"{auc(C[truth], C[~truth]):.2f}",
                 "0.50"],
                [f"labels: C, {what}", "mean p(plausible): true / false statements",
                 f"{C[truth].mean():.3f} / {C[~truth].mean():.3f}", "–"],
                [f"labels: C, {what}", "objects whose likeliest room holds them", f"{int(ok.sum())} / {len(ok)}",
                 f"{truth.mean():.0%} by chance"]]

    C, S = sg.tables_to_arrays(bench, lab.tables)
    rows += c_rows(C, "reference order (3 plausible, then 3 implausible examples)")
    for name, t in extra["orders"].items():
        rows += c_rows(t.array("object", "room", object=bench.objects, room=bench.rooms), f"examples {name}")
    alike = np.zeros_like(S, dtype=bool)
    for g in LOOK_ALIKE:
        for a in g:
            for b in g:
                alike[bench.objects.index(a), bench.objects.index(b)] = a != b
    off = ~np.eye(len(S), dtype=bool)
    rows.append(["labels: S (reference order)", "AUC: look-alike vs other pairs", f"{auc(S[alike], S[off & ~alike]):.2f}",
                 "0.50"])
    rows.append(["labels: S (reference order)", "mean p(plausible): look-alike / other pairs",
                 f"{S[alike].mean():.3f} / {S[off & ~alike].mean():.3f}", "–"])
    Cold, Sold = sg.tables_to_arrays(bench, extra["older_labels"], calibrate=True)
    St = sg.true_tables(bench)[1]
    for name, s_ in (("reference order", S), ("older next-token query, calibrated", Sold)):
        rows.append([f"labels: S ({name})", "relabel cost −log S (nats): look-alike / other pairs",
                     f"{-np.log(s_[alike]).mean():.2f} / {-np.log(s_[off & ~alike]).mean():.2f}",
                     f"true S: {-np.log(St[alike]).mean():.2f} / {-np.log(St[off & ~alike]).mean():.2f}"])
    ok = truth[np.arange(len(Cold)), Cold.argmax(1)]
    rows.append(["labels: C, older next-token query (calibrated)", "objects whose likeliest room holds them",
                 f"{int(ok.sum())} / {len(ok)}", f"{truth.mean():.0%} by chance"])
    se = results["search"][0]
    sb = nv.make_search_benchmark(se.seed, se.size)
    L = nv.location_table(sb, se.tables)
    ok = [ROOM_OBJECTS[sb.rooms[int(np.argmax(L[i]))]].get(o, 0) > 0 for i, o in enumerate(sb.objects)]
    rows.append(["search: p(room \\| object)", "objects whose likeliest room holds them", f"{sum(ok)} / {len(ok)}",
                 f"{truth.mean():.0%} by chance"])
    act = results["actions"][0]
    abench = ac.make_action_benchmark(act.seed, act.size)
    for name, tables in (("reference prompts", act.tables), ("older next-token prompts", extra["older_actions"])):
        prior = ac.tables_to_prior(abench, tables)
        tp = ac.true_prior(abench)
        held = abench.held_out()
        seen_p, held_p, unif, first_ok, first_unif = [], [], [], [], []
        for task, acts in abench.tasks.items():
            K = len(acts)
            p = prior[task][1].copy()
            np.fill_diagonal(p, 0)
            p /= p.sum(axis=1, keepdims=True)
            for a, b in zip(*np.nonzero(tp[task][1])):
                (held_p if f"{acts[a]} → {acts[b]}" in held[task] else seen_p).append(p[a, b])
            unif.append(1 / (K - 1))
            first_ok.append(float(prior[task][0][tp[task][0] > 0].sum()))
            first_unif.append(float(np.mean(tp[task][0] > 0)))
        rows.append([f"actions: p(next \\| previous, task), {name}", "mean p of the transitions seen in training",
                     f"{np.mean(seen_p):.2f}", f"{np.mean(unif):.2f} uniform"])
        rows.append([f"actions: p(next \\| previous, task), {name}", "mean p of the held-out transitions",
                     f"{np.mean(held_p):.2f}", f"{np.mean(unif):.2f} uniform"])
        rows.append([f"actions: p(first \\| task), {name}", "mass on the scripts' first steps, mean over tasks",
                     f"{np.mean(first_ok):.2f}", f"{np.mean(first_unif):.2f} uniform"])
    return rows


def extra_tables(lm, seed: int, size: str) -> dict:
    """Prompts asked once besides the benchmarks': the older next-token queries, and C with the worked
    examples in two other orders (a probe of how much the answer follows the examples' order)."""
    lb = sg.make_label_benchmark(seed, size)
    abench = ac.make_action_benchmark(seed, size)
    c_q = sg.label_queries(lb)[0]
    ex = list(c_q.examples)
    plaus = [e for e in ex if e["answer"] == "plausible"]
    impl = [e for e in ex if e["answer"] == "implausible"]
    orders = {"alternating, plausible first": [x for pair in zip(plaus, impl) for x in pair],
              "alternating, implausible first": [x for pair in zip(impl, plaus) for x in pair]}
    order_qs = [dataclasses.replace(c_q, name=f"cooccurrence ({k})", examples=v) for k, v in orders.items()]
    older_l = sg.label_queries(lb, "next-token")
    older_a = ac.action_queries(abench, "next-token")
    t0 = time.perf_counter()
    tables = {t.name: t for t in query_priors(lm, older_l + older_a + order_qs)}
    return {"older_labels": {q.name: tables[q.name] for q in older_l},
            "older_actions": {q.name: tables[q.name] for q in older_a},
            "orders": {k: tables[f"cooccurrence ({k})"] for k in orders}, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lm", default="local:smollm2-135m", help="language model spec (default local:smollm2-135m)")
    ap.add_argument("--seeds", default=DEFAULT_SEEDS, help=f"benchmark seeds (default {DEFAULT_SEEDS})")
    ap.add_argument("--size", default="default", choices=["small", "default"])
    ap.add_argument("--doc", default="docs/results/lampp.md")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    doc = Path(args.doc)
    (doc.parent / "figures").mkdir(parents=True, exist_ok=True)
    config = PriorsConfig()
    lm = open_lm(args.lm)
    results: dict[str, list] = {name: [] for name in BENCHMARKS}
    timings = {}
    try:
        for name in BENCHMARKS:
            t0 = time.perf_counter()
            for seed in seeds:
                res = run_benchmark(name, lm, seed=seed, size=args.size, config=config)
                results[name].append(res)
                print("\n".join(res.summary_lines()), flush=True)
            timings[name] = time.perf_counter() - t0
        extra = extra_tables(lm, seeds[0], args.size)
        timings["ablation prompts"] = extra["seconds"]
        stats_ = getattr(lm, "stats", None)
        cache = stats_.to_dict() if stats_ is not None else None
    finally:
        lm.close()
    ablations = {"labels": [r for res in results["labels"] for r in label_ablations(res, extra["older_labels"])],
                 "actions": [r for res in results["actions"] for r in action_ablations(res, extra["older_actions"])],
                 "search": [r for res in results["search"] for r in search_ablations(res)]}
    write_doc(doc, args, seeds, config, results, ablations, extra, timings, cache)
    print(f"wrote {doc}")
    return 0


SETUP = [
    # (what, ours, paper / reference code, why different, kind)
    ("language model", "SmolLM2-135M-Instruct (the bundled GGUF), on CPU",
     "GPT-3 text-davinci-002 (segmentation), text-davinci-003 (actions), through the OpenAI API",
     "only the bundled model runs here, offline; nothing larger is available", "setup (cannot be removed here)"),
    ("perception", "simulated: a region classifier over 19 objects in 6 rooms (look-alikes confused, rare objects "
     "under-predicted); Gaussian frame features per action; a hallway view of one object per room",
     "RedNet on SUN RGB-D (37 classes); CrossTask videos with I3D / audio features; Habitat navigation",
     "no data sets or GPU training here; simulation makes every ground truth known", "setup"),
    ("label prior questions", "binary: \"A kitchen has a stove:\" and \"The towel looks like the pillow:\", "
     "p(plausible) against implausible after 3 plausible then 3 implausible worked examples; used as given "
     "(no calibration)", "the same format (\"A kitchen has fridge: \"), 3 + 3 examples in the same order",
     "our examples name objects outside the benchmark (the reference's name objects of its inventory and skip "
     "the one equal to the question); articles added", "same (wording)"),
    ("label inference", "T = 9 on the classifier; κ = 10 on the rooms' mean evidence; w = C · p(room); "
     "S's diagonal 1", "the same (T = 9, κ = 10)", "–", "same"),
    ("temperature grid", "1, 2, 4, 8, 16, chosen on 30 validation scenes per seed (rows \"T from validation\")",
     "none (fixed 9)", "a sensitivity check: our classifier's logits are on another scale than RedNet's", "ours only"),
    ("action prior questions", "3 worked tasks (\"The first step can be …\"), then the task with its actions listed "
     "(alphabetically), \"The first step is\" / \"The step after X is\" + each action, softmaxed over the task's "
     "actions", "the same format, with CrossTask's tasks and the reference's worked tasks",
     "our 4 kitchen tasks (5–7 actions) and our own worked tasks", "setup (tasks)"),
    ("action prior weight", "α = 10 pseudo-counts per action (α · K · p)", "10 (the paper's held-out-transition runs)",
     "–", "same"),
    ("action data", "25 training videos per task, 8 + 8 test videos per task per seed",
     "CrossTask (18 tasks, thousands of videos), held-out transitions", "simulated data", "scale (data size) and setup"),
    ("object search", "rank 4 rooms by Σ_r p(target \\| r) p(r \\| landmark); counts from 30 training houses + "
     "α · N · p_LM(object \\| room); α from 0.1–10 chosen per method on validation seeds 100–102",
     "navigation in Habitat with an LM prior on object-room co-occurrence", "the reference code has no navigation "
     "part; ours is a searcher of our own", "setup"),
    ("search prior question", "p(room \\| \"The {object} is in the\") (next-token, no examples)",
     "not in the reference code", "–", "setup"),
    ("model chaining", "labels: the model names the room, each region takes the classifier's top-3 candidate "
     "likeliest there by C; actions and search: see the sections", "labels: the model names the room, then \"The "
     "thing that looks like X is actually\" over every class", "ours is cheaper (no per-region generation)", "setup"),
    ("seeds and intervals", "10 benchmark seeds; mean with a 95 % t-interval over seeds; one set of LM tables "
     "shared by all seeds", "one run on fixed test sets", "–", "ours only"),
]


def write_doc(doc: Path, args, seeds, config, results, ablations, extra, timings, cache) -> None:
    tag = "" if args.doc == "docs/results/lampp.md" else f"-{doc.stem}"
    figs = doc.parent / "figures"
    st = {name: results[name][0].info["settings"] for name in BENCHMARKS}
    lm_spec = args.lm
    extra_args = (f" --lm '{lm_spec}'" if lm_spec != "local:smollm2-135m" else "") + \
        (f" --doc {args.doc}" if tag else "") + (f" --seeds {args.seeds}" if args.seeds != DEFAULT_SEEDS else "")
    lines = [
        f"# LaMPP: language models as probabilistic priors ({lm_spec})",
        "",
        "*LaMPP: Language Models as Probabilistic Priors for Perception and Action* (Li, Chen, Sharma & "
        "Andreas, 2023) casts labeling and decision-making as inference in graphical models whose priors come "
        "from a language model, and reports gains on rare, out-of-distribution and structurally novel inputs "
        "(semantic segmentation, navigation, video action segmentation); its baseline is *model chaining* "
        "(asking the model directly and using the answer as is).",
        "",
        "Our version keeps the graphical models and asks the model as the authors' code does (facts read from "
        "it: prompt formats, binary plausible / implausible questions with worked examples, the fixed classifier "
        "temperature, how the tables enter each model), and generates the data (seeded) so that every ground "
        "truth is known: see `lmscope priors list` and the docstrings of `lmscope.priors`.",
        "",
        "## Setup against the paper's",
        "",
        "Kinds: *same*; *scale* (model size, width or depth, training steps, data size); *setup* (any other "
        "difference, including one that cannot be removed here); *ours only* (an addition).",
        "",
        md_table(["", "ours", "paper / reference code", "why different", "kind"], [list(r) for r in SETUP]),
        "",
        "Regenerate this page:",
        "",
        "```",
        f"PYTHONPATH=src .venv/bin/python experiments/lampp.py{extra_args}",
        "```",
        "",
        "which runs, for each seed:",
        "",
        "```",
        *[f"lmscope priors run {name} --lm {lm_spec} --seed SEED" for name in BENCHMARKS],
        "```",
        "",
        f"Seeds {', '.join(map(str, seeds))}; size `{args.size}`. Every cell is the mean over the seeds with a "
        "95 % t-interval over the seeds in brackets, clipped to the metric's range and left out when every "
        "seed agrees (the seeds vary the data: scenes, videos, houses). The "
        "language model's tables do not depend on the seed: **all seeds share one set of LM tables**, so the "
        "intervals hold the data's variation, not the model's answers'. Methods:",
        "",
        "- **no prior**: the task model and its training data alone (the classifier; counts of first steps and "
        f"transitions; counts of objects per room in {st['search']['n_train_houses']} training houses);",
        "- **uniform prior**: the null prior in the same graphical model (labels: every statement p = 1/2, which "
        "changes no label by construction; actions and search: add-α smoothing of the counts);",
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
        "labels": ("Label correction", f"Region accuracy on the test scenes ({st['labels']['n_test']} scenes × "
                   f"{st['labels']['n_regions']} regions per seed); rare = objects the classifier saw at a tenth of "
                   "the others' frequency (toaster, bathtub, pillow, lawn mower, bookshelf). Room accuracy: the "
                   "room the model infers. Prompts: C from p(plausible | \"A kitchen has a stove:\"), S from "
                   "p(plausible | \"The towel looks like the pillow:\"), each after six worked examples (objects "
                   "outside the benchmark), used as the model gives them. T = 9 (the reference's) unless the row "
                   f"says \"T from validation\" (chosen from {', '.join(f'{t:g}' for t in config.temperatures)} on "
                   f"{st['labels']['n_val']} validation scenes of the same seed; the test scenes take no part)."),
        "actions": ("Action segmentation (HSMM)", "Frame accuracy and edit score (100 · (1 − Levenshtein / "
                    f"longer length) on segment sequences) over {4 * st['actions']['n_test']} in-distribution and "
                    f"{4 * st['actions']['n_test']} out-of-distribution test videos per seed (4 tasks, "
                    f"{4 * st['actions']['n_train']} training videos). The out-of-distribution videos follow step "
                    "orders never seen in training (held-out first steps and transitions below). α = "
                    f"{config.action_alpha:g}. Prompts: three worked tasks, then \"Your task is to make tea. Here is "
                    "an *unordered* set of possible actions: {…}. Please order these actions for your task.\" and "
                    "\"The first step is\" or \"The step after {previous} is\", each followed by the task's actions."),
        "search": ("Object search", "Rooms visited until the target is found and success at the first room, over "
                   f"{st['search']['n_episodes']} searches per seed in 4-room houses (half for rare objects). "
                   f"α (pseudo-counts α · 19 per kind of room) is chosen per method from "
                   f"{', '.join(f'{a:g}' for a in config.search_alphas)} by the fewest rooms visited on the "
                   f"validation seeds {', '.join(map(str, config.validation_seeds))}, never on a test seed. Prompts: "
                   "p(room | \"The {object} is in the\"); chaining: p(object | \"The {target} is usually near the\")."),
    }
    for name in BENCHMARKS:
        res = results[name]
        rows = [r for x in res for r in seeded(x, x.rows)]
        summary = summarize_rows(rows)
        title, text = descr[name]
        metric, _ = MAIN[name]
        png = figs / f"{doc.stem}-{name}.png"
        methods = [m for m in METHODS if m in set(summary["method"])] + \
            [m for m in dict.fromkeys(summary["method"]) if m not in METHODS]
        plot_method_bars(summary.rename(columns={"mean": "value"}), metric, png,
                         title=f"{name}: {metric.replace('_', ' ')} (mean of {len(seeds)} seeds)")
        lines += [f"## {title}", "", text, "", method_table(summary, methods), "",
                  f"![{name}](figures/{png.name})", ""]
        if name == "actions":
            held = res[0].info["held_out"]
            lines += ["Held out of training: " + "; ".join(f"*{t}*: {', '.join(v)}" for t, v in held.items()) + ".",
                      ""]
        if name == "labels":
            temps = pd.DataFrame([r.info["temperatures"] for r in res])
            chosen = [c for c in temps.columns if "validation" in c]
            lines += ["Temperature chosen on the validation scenes, per seed: " + "; ".join(
                f"{c.replace(' (T from validation)', '')} {', '.join(f'{v:g}' for v in temps[c])}" for c in chosen)
                + ".", ""]
        if name == "search":
            alphas = pd.DataFrame([r.info["alpha"] for r in res])
            lines += ["α chosen on the validation seeds: " + "; ".join(
                f"{c} {alphas[c].iloc[0]:g}" for c in alphas.columns) + " (the same for every test seed: the "
                "validation seeds and the LM table do not change).", ""]
        abl = summarize_rows(ablations[name])
        lines += ["Ablations (the same tables, or prompts asked once for every seed):", "", method_table(abl), ""]
    lines += ["## How much the model knows", "",
              "The model's tables against the generator's truth (AUC: the chance that a true statement gets a higher "
              "p(plausible) than a false one; 0.5 = no information). The two rows *examples alternating* ask the "
              "same C questions with the six worked examples in another order, as a probe:", "",
              md_table(["table", "check", "model", "baseline"], knowledge(results, extra)), ""]
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    hits = f"; LM cache {cache['hits']} hits, {cache['misses']} computed" if cache else ""
    lines += ["## Cost", "", f"Wall time of this run ({len(seeds)} seeds each): {secs}{hits}. Answers already in "
              "lmscope's LM cache cost nothing: this run found the reference-format questions there, from a first "
              "run of the same code in which they took 231 s (labels: 475 prompts of two continuations) and 94 s "
              "(actions: 30 prompts); the search prompts take about 13 s, and each seed adds its label-chaining "
              "prompts (one per scene). All on 2 CPU cores shared with other jobs.", ""]
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


if __name__ == "__main__":
    sys.exit(main())
