"""Pushdown layers against the same transformer without them: the comparison of Murty et al. (2023).

Trains, as one sweep (`lmscope.train.sweep`: local processes, or a Ray cluster with --ray), for every
task and seed:

* ``pushdown``: `lmscope pushdown train` with every layer a pushdown layer and the attachment head,
  teacher-forced on the suite's gold trees;
* ``plain``: the same relative-position transformer (same size, data, steps, seed) without the tape
  and the attachment head (`--pushdown-layers none`): the primary baseline;
* ``small`` (question formation and tense inflection): the existing small transformer of `lmscope grok
  train` (absolute sinusoidal positions), same size, data, steps and learning rate, for its
  tree-projection trees;

plus, for the sample-efficiency curve, ``pushdown`` and ``plain`` on question formation at every
--sizes training-set size. Every run is then evaluated once (`lmscope.pushdown.evaluate.pushdown_eval`
on the run's own held-out rows, beam --beam, as a second sweep of `lmscope pushdown eval` into
RUNS/SIZE-eval-*), and the small transformer's
tree projections are computed on the same held-out sentences. The page, docs/results/pushdown.md, gets
(a) held-out in-distribution and generalization accuracy on question formation and tense inflection,
(b) Dyck closing-bracket accuracy on strings nested deeper than any in training, (c) generalization
accuracy against training-set size, (d) perplexity on held-out in-distribution lines, (e) parse F1 of
the pushdown model's beam parses against the small transformer's tree projections and the baselines.

    .venv/bin/python experiments/pushdown.py                        # the page, CPU-sized (see SIZES)
    .venv/bin/python experiments/pushdown.py --size gpu --device cuda --jobs 8   # the larger configuration
    .venv/bin/python experiments/pushdown.py --report-only          # the page from the runs so far

Runs live in --runs and resume where they stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from _doc import md_table, write_keeping_reading

from lmscope.cli._lists import int_list
from lmscope.pushdown.run import PushdownRunConfig
from lmscope.train.sweep import SweepJob, run_sweep

TASKS = ("question-formation", "tense-inflection", "dyck")
SHORT = {"question-formation": "qf", "tense-inflection": "ti", "dyck": "dyck"}
KINDS = ("pushdown", "plain", "small")
# model and training settings shared by every run of a size (the small transformer takes the same ones)
SIZES = {
    "cpu": dict(layers=2, d_model=64, heads=4, d_ff=256, steps=8000, warmup=300, n_train=2000, batch_size=8,
                lr=1e-3, eval_every=500, ckpt_every=1000, n_test=200, dyck_train_depth=4),
    "gpu": dict(layers=4, d_model=256, heads=8, d_ff=1024, steps=4000, warmup=400, n_train=10000, batch_size=32, lr=5e-4,
                eval_every=1000, ckpt_every=2000, n_test=500, dyck_train_depth=4),
}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def run_name(task: str, kind: str, n_train: int, seed: int) -> str:
    return f"{SHORT[task]}-{kind}-n{n_train}-s{seed}"


def pushdown_argv(task, kind, size, n_train, seed, out, device) -> list[str]:
    settings = {k: v for k, v in size.items() if k in {f.name for f in PushdownRunConfig.options()}}
    config = PushdownRunConfig.make(**{**settings, "n_train": n_train, "seed": seed,
                                       "pushdown_layers": "all" if kind == "pushdown" else "none"})
    argv = ["pushdown", "train", "--task", task, *config.to_argv(), "--quiet", "--out", str(out)]
    return argv + (["--device", device] if device != "cpu" else [])


def small_argv(task, size, n_train, seed, out, device) -> list[str]:
    from lmscope.grokking.run import GrokConfig

    names = {f.name for f in GrokConfig.options()}
    config = GrokConfig.make(**{**{k: v for k, v in size.items() if k in names}, "n_train": n_train,
                                "seed": seed, "tree_sample": 0})
    argv = ["grok", "train", "--task", task, *config.to_argv(), "--quiet", "--out", str(out)]
    return argv + (["--device", device] if device != "cpu" else [])


def jobs_of(args, runs: Path, size: dict) -> list[SweepJob]:
    jobs = []
    for task in args.tasks:
        for seed in args.seeds:
            for kind in ("pushdown", "plain") + (("small",) if task != "dyck" else ()):
                name = run_name(task, kind, size["n_train"], seed)
                argv = (small_argv(task, size, size["n_train"], seed, runs / name, args.device) if kind == "small" else
                        pushdown_argv(task, kind, size, size["n_train"], seed, runs / name, args.device))
                jobs.append(SweepJob(name=name, run_dir=runs / name, argv=argv, steps=size["steps"]))
    if "question-formation" in args.tasks:
        for n in args.sizes:
            if n == size["n_train"]:
                continue
            for seed in args.seeds:
                for kind in ("pushdown", "plain"):
                    name = run_name("question-formation", kind, n, seed)
                    jobs.append(SweepJob(name=name, run_dir=runs / name, steps=size["steps"], argv=pushdown_argv(
                        "question-formation", kind, size, n, seed, runs / name, args.device)))
    return jobs


# ------------------------------------------------------------------------------------------ evaluation
def trained(run_dir: Path) -> int | None:
    """The step a finished run reached (None while it trains or before it starts)."""
    from lmscope.train.loop import read_metrics

    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    rows = read_metrics(run_dir)
    return rows[-1]["step"] if rows and rows[-1]["step"] >= info["train"]["steps"] else None


def eval_jobs(args, runs: Path, size: dict) -> list[SweepJob]:
    """One `lmscope pushdown eval` per finished pushdown/plain run not yet evaluated at its last step
    (a sweep of its own, so evaluations run in parallel like the training runs)."""
    out = []
    for job in jobs_of(args, runs, size):
        step = trained(job.run_dir)
        if job.name.split("-")[1] == "small" or step is None:
            continue
        dest = runs.parent / f"{runs.name}-eval-beam{args.beam}-limit{args.limit}" / job.name
        try:
            if json.loads((dest / "metrics.json").read_text())["step"] == step:
                continue
        except (OSError, ValueError, KeyError):
            pass
        argv = ["pushdown", "eval", str(job.run_dir), "--beam", str(args.beam), "--limit", str(args.limit),
                "--device", args.device, "--quiet", "--force", "--out", str(dest)]
        out.append(SweepJob(name=f"eval-{job.name}", run_dir=dest, argv=argv))
    return out


def evaluation(args, runs: Path, name: str) -> dict | None:
    """The evaluation of run ``name`` (its `pushdown eval` metrics.json), None if there is none yet."""
    path = runs.parent / f"{runs.name}-eval-beam{args.beam}-limit{args.limit}" / name / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def small_scores(run_dir: Path, sentences: list[list[str]], golds: list[str]) -> dict | None:
    """The small transformer's held-out accuracies (from its last metrics row) and the parse F1 of its
    tree projections (last layer) of ``sentences`` against ``golds``; None while it trains."""
    from lmscope.data.trees import parse_bracketed
    from lmscope.grokking.metrics import tree_scores
    from lmscope.grokking.runs import checkpoint_steps, rebuild_run, run_model
    from lmscope.train.loop import read_metrics

    rows = read_metrics(run_dir)
    final = next((r for r in reversed(rows) if r.get("test_gen_acc") is not None), None)
    if final is None:
        return None
    out = {"test_id_acc": final.get("test_id_acc"), "test_gen_acc": final.get("test_gen_acc")}
    if sentences:
        model = run_model(run_dir, checkpoint_steps(run_dir)[-1])
        tok = rebuild_run(run_dir).tokenizer
        known = [i for i, s in enumerate(sentences) if all(w in tok.token_to_id for w in s)]
        out.update(tree_scores(model, tok, [" ".join(sentences[i]) for i in known],
                               [parse_bracketed(golds[i], labeled=False) for i in known]))
        out["tree_sentences"] = len(known)
    return out


def mean_ci(values) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return "–"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    half = T975.get(len(v) - 1, 1.96) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return f"{v.mean():.3f} ± {half:.3f}"


def per_seed(values) -> str:
    return " / ".join("–" if x is None else f"{x:.2f}" for x in values)


# ------------------------------------------------------------------------------------------ page
SETUP = """## Setup against the paper

The paper's settings are from its text and its reference code (`config/config.yaml`,
`train_transformers.py`, `eval_utils/eval_dyck.py`, `data_utils/dyck_helpers.py` in the authors'
repository), marked "paper text" or "code". Kind: **same**; **scale** (model size, width/depth, training
steps, data size); **setup** (a difference we cannot remove here, so a finding it touches is "not tested
under the paper's conditions", not "does not reproduce").

| setting | ours ({size} size) | paper | kind | why different |
|---|---|---|---|---|
| model | {layers} layers, d = {d_model}, {heads} heads, FFN {d_ff}; relative positions, no absolute ones | Dyck: 6 layers, d = 128 (code, README command); BLLIP: 16 layers, d = 1024, 8 heads (code); default config 6 layers, d = 512, 4 heads | scale | 2 CPU cores |
| pushdown layers | every layer, one depth-embedding table per layer, initialised at 0 | every layer (`rec_layers` 0..L-1), depth embeddings initialised at 0 (code) | same | |
| tape | depth = number of reduces a word took part in, capped at 32 | depth (BLLIP, `with_depth_info`); Dyck uses depth > 0 as a binary tape (code) | same idea; Dyck differs | we keep depths on Dyck too |
| attachment head | final layer, scores from the hidden states, the next word's embedding and the depths, masked to the stack's constituents | final layer (`stack_pred_layer` = L) (code) | same | |
| training data | the suites' whole lines with their gold trees (question formation, tense inflection, Dyck-2); {n_train} training lines | BLLIP-LG (1.8M sentences, silver parses) for language modelling; Dyck-20 with depth <= 10, 200k strings (code) | setup (BLLIP needs a licence; the grammar tasks are ours) and scale | nothing licensed is bundled; the issue's tasks |
| training | {steps} steps (linear warmup {warmup}, then constant), batch {batch_size}, AdamW lr {lr}, no weight decay | lr 1e-4, batch 8 with 8 accumulation steps (64), up to 300k steps; Dyck 10k steps (code) | scale | CPU time |
| Dyck generalization | closing-bracket accuracy on held-out strings nested deeper than any training string (training depth <= {dyck_train_depth}) | one deep nest of depth 15-49 with a test prefix inserted, 100 strings, beam 50, argmax over closing brackets (code) | setup (how the deep strings are made) and scale | our suite's depth split |
| sample efficiency | question-formation generalization at {sizes} training lines | syntactic generalization (SyntaxGym) against training-corpus size; "3-5x more sample-efficient" (paper text) | setup (task) and scale | |
| perplexity | per token over held-out in-distribution whole lines; pushdown: from the final beam (an upper bound); plain: exact | from the logsumexp of the final beam (code, `beam_search_util.py`) | same | |
| parse evaluation | pooled bracket F1 of the best beam parse of held-out declaratives; the small transformer's tree projections on the same sentences; baselines | unlabeled F1 on PTB (paper text) | setup (data) | |
| seeds | {seeds} | one (42) in the code | more than the paper | intervals |
"""


def write_page(args, runs: Path, size: dict, results: dict) -> None:
    doc = Path(args.doc)
    seeds = args.seeds
    lines = ["# Pushdown layers: a stack tape and an attachment head against the same transformer without them", "",
             "Regenerate (runs are cached under `runs/`, delete them to retrain):", "",
             f"    .venv/bin/python experiments/pushdown.py --size {args.size} --tasks {','.join(args.tasks)} "
             f"--seeds {','.join(map(str, seeds))} --sizes {','.join(map(str, args.sizes))} --beam {args.beam} "
             f"--limit {args.limit}" + (f" --device {args.device}" if args.device != "cpu" else ""), "",
             f"Every number below comes from this command. Cells give the mean ± the half-width of its 95 % "
             f"t-interval over the seeds {', '.join(map(str, seeds))} (the seed sets the data, the weights and the "
             "order), then the per-seed values. Accuracies are on held-out rows scored once, after the last step; "
             "the pushdown model uses its own greedy attachments while it reads and answers, never the gold ones.",
             "", SETUP.format(size=args.size, sizes=", ".join(map(str, args.sizes)),
                              seeds=", ".join(map(str, seeds)), **size)]
    n = size["n_train"]

    def get(task, kind, key, n_train=n):
        out = []
        for s in seeds:
            r = results.get(run_name(task, kind, n_train, s))
            out.append(None if r is None else r.get(key))
        return out

    lines += ["## (a, b) Generalization", "",
              "Held-out accuracy after the last step: in-distribution (`test-id`) and the generalization split "
              "(`test-gen`: question formation, a relative clause on the subject; tense inflection, an attractor "
              f"noun; Dyck, nesting deeper than {size['dyck_train_depth']}).", ""]
    rows = []
    for task in args.tasks:
        for kind in KINDS:
            if kind == "small" and task == "dyck":
                continue
            ids, gens = get(task, kind, "id"), get(task, kind, "gen")
            if all(v is None for v in ids + gens):
                continue
            rows.append([task, kind, mean_ci(ids), per_seed(ids), mean_ci(gens), per_seed(gens)])
    lines += [md_table(["task", "model", "id acc", "per seed", "gen acc", "per seed"], rows), ""]

    if "question-formation" in args.tasks:
        lines += ["## (c) Sample efficiency", "",
                  "Question-formation generalization accuracy against the number of training lines.", ""]
        rows = []
        for m in sorted(set(args.sizes) | {n}):
            for kind in ("pushdown", "plain"):
                gens = get("question-formation", kind, "gen", m)
                ids = get("question-formation", kind, "id", m)
                if all(v is None for v in gens):
                    continue
                rows.append([m, kind, mean_ci(ids), mean_ci(gens), per_seed(gens)])
        lines += [md_table(["training lines", "model", "id acc", "gen acc", "per seed"], rows), ""]
        pairs = [(a, b) for m in sorted(set(args.sizes) | {n})
                 for a, b in zip(get("question-formation", "pushdown", "gen", m),
                                 get("question-formation", "plain", "gen", m)) if a is not None and b is not None]
        if len(pairs) >= 2:
            from scipy.stats import wilcoxon

            diffs = [a - b for a, b in pairs]
            p = wilcoxon(diffs).pvalue if any(diffs) else 1.0
            lines += [f"Pushdown minus plain, paired by training-set size and seed (the same training lines "
                      f"and seed): mean {np.mean(diffs):+.3f} over {len(diffs)} pairs, pushdown "
                      f"higher in {sum(d > 0 for d in diffs)}; Wilcoxon signed-rank p = {p:.4f}.", ""]

    lines += ["## (d) Perplexity", "",
              f"Per token over held-out in-distribution and generalization lines (beam {args.beam}; the pushdown "
              "figure is an upper bound, the plain one exact).", ""]
    rows = []
    for task in args.tasks:
        for kind in ("pushdown", "plain"):
            ppl = get(task, kind, "ppl")
            if any(v is not None for v in ppl):
                rows.append([task, kind, mean_ci(ppl), per_seed(ppl)])
    lines += [md_table(["task", "model", "perplexity", "per seed"], rows), ""]

    lines += ["## (e) Parses", "",
              f"Pooled bracket F1 against the gold trees of the held-out declaratives: the pushdown model's best "
              f"beam-{args.beam} parse, the small transformer's tree projection (last layer, threshold 0), and the "
              "baselines of the same sentences.", ""]
    rows = []
    for task in [t for t in args.tasks if t != "dyck"] + [t for t in args.tasks if t == "dyck"]:
        f1 = get(task, "pushdown", "f1")
        if all(v is None for v in f1):
            continue
        row = [task, mean_ci(f1), mean_ci(get(task, "small", "tree_f1")) if task != "dyck" else "–"]
        for b in ("left", "right", "balanced", "random"):
            row.append(mean_ci(get(task, "pushdown", f"f1_{b}")))
        rows.append(row)
    lines += [md_table(["task", "pushdown (beam)", "small transformer (tree projection)", "left-branching",
                        "right-branching", "balanced", "random"], rows), ""]
    lines += [f"Runs: {len(results)} finished and evaluated of {args.n_jobs}.", "",
              "## Reading", "", "READING_PLACEHOLDER", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    write_keeping_reading(doc, "\n".join(lines))


def collect(args, runs: Path, size: dict) -> dict:
    """Every finished run's figures: {run name: {id, gen, ppl, f1, f1_<baseline>, tree_f1, ...}}."""
    out = {}
    parses = {}
    for job in jobs_of(args, runs, size):
        kind = job.name.split("-")[1]
        if kind == "small" or not job.run_dir.is_dir():
            continue
        ev = evaluation(args, runs, job.name)
        if ev is None or ev.get("step") != trained(job.run_dir):
            continue
        ts = ev.get("task_scores") or {}
        row = {"id": (ts.get("test-id") or {}).get("acc"), "gen": (ts.get("test-gen") or {}).get("acc"),
               "ppl": ev.get("perplexity"), "f1": (ev.get("parse") or {}).get("f1"),
               }
        row.update({f"f1_{k}": v for k, v in (ev.get("baseline_f1") or {}).items()})
        out[job.name] = row
        if ev.get("parses"):
            parses[job.name] = ev["parses"]
    for job in jobs_of(args, runs, size):
        if job.name.split("-")[1] != "small" or not job.run_dir.is_dir():
            continue
        twin = job.name.replace("-small-", "-pushdown-")
        ps = parses.get(twin, [])
        sc = small_scores(job.run_dir, [p["words"].split() for p in ps], [p["gold"] for p in ps])
        if sc is not None:
            out[job.name] = {"id": sc["test_id_acc"], "gen": sc["test_gen_acc"], "tree_f1": sc.get("f1"),
                             "t_score": sc.get("t_score")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu", help="model and training sizes (SIZES)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sizes", default="250,500,1000,2000", help="training lines of the sample-efficiency curve")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the size's)")
    ap.add_argument("--beam", type=int, default=8)
    ap.add_argument("--limit", type=int, default=100, help="held-out rows per split evaluated")
    ap.add_argument("--jobs", type=int, default=None, help="runs at once (default: one per core)")
    ap.add_argument("--ray", default=None, help="a Ray address: run the sweep on that cluster")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--runs", default="runs/pushdown")
    ap.add_argument("--doc", default="docs/results/pushdown.md")
    ap.add_argument("--report-only", action="store_true", help="train nothing: evaluate the finished runs and "
                    "write the page")
    ap.add_argument("--no-eval", action="store_true", help="with --report-only: evaluate nothing either")
    args = ap.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in args.tasks:
        if t not in TASKS:
            ap.error(f"unknown task {t!r}; choose from {', '.join(TASKS)}")
    args.seeds, args.sizes = int_list(args.seeds, "--seeds"), int_list(args.sizes, "--sizes")
    size = dict(SIZES[args.size], **({"steps": args.steps} if args.steps else {}))
    runs = Path(args.runs) / args.size
    jobs = jobs_of(args, runs, size)
    args.n_jobs = len(jobs)
    if not args.report_only:
        res = run_sweep(jobs, runs, workers=args.jobs, threads=1, ray=args.ray)
        if res["failed"]:
            print(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])}", file=sys.stderr)
    todo = eval_jobs(args, runs, size)
    if todo and not args.no_eval:
        res = run_sweep(todo, runs.parent / f"{runs.name}-eval-beam{args.beam}-limit{args.limit}",
                        workers=args.jobs, threads=1, ray=args.ray)
        if res["failed"]:
            print(f"{len(res['failed'])} evaluation(s) failed: {', '.join(res['failed'])}", file=sys.stderr)
    results = collect(args, runs, size)
    write_page(args, runs, size, results)
    print(f"wrote {args.doc} ({len(results)} runs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
