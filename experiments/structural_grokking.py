"""Structural grokking at CPU scale: question formation, small transformers of several depths.

Trains (or resumes) one run per depth and seed as a sweep (the code of `lmscope grok sweep`: one
`lmscope grok train` process per run, at most --jobs at a time, one thread each), plots them and writes
docs/results/structural-grokking.md: per depth, when in-distribution accuracy saturated, the
generalization accuracy along training, and the final t-score, next to the paper's numbers.

Runs live in --runs and resume where they stopped, so the page can be regenerated at any time
(with the steps reached so far) and the runs continued later by the same command.

    .venv/bin/python experiments/structural_grokking.py                       # depths 2 and 4
    .venv/bin/python experiments/structural_grokking.py --layers 2,4,6 --steps 300000
    .venv/bin/python experiments/structural_grokking.py --layers 2,4,6,8 --seeds 0,1,2 --steps 30000 \
        --long-seeds 0 --long-steps 50000                                      # the depth sweep
    .venv/bin/python experiments/structural_grokking.py --report-only         # page from runs so far
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _doc import write_keeping_reading

from lmscope.cli._lists import int_list
from lmscope.cli.grok import sweep_seeds
from lmscope.errors import LmscopeError
from lmscope.grokking import grok_sweep_jobs, load_run, sweep_run_name
from lmscope.report.grokking import plot_runs
from lmscope.train.sweep import run_sweep

# the grok_train settings of every run (the defaults of `lmscope grok sweep` except these)
# (the reference's optimizer and schedule: no weight decay, dropout 0.1, 10k warmup steps; McCoy et al.'s
# 100k training lines; every checkpoint kept for tree projections along training)
SETTINGS = {"eval_every": 2000, "ckpt_every": 5000, "n_train": 100000, "warmup": 10000, "dropout": 0.1,
            "weight_decay": 0.0, "keep_checkpoints": 0, "n_test": 1000}

PAPER = ("Paper (d = 512, 8 heads, 6 layers, 300k steps): question-formation generalization 0.49 at 9k steps, "
         "0.77 at 30k, 0.87 at 90k, 0.93 at 150k, while in-distribution accuracy is ≈100 % by 9k; final t-score "
         "0.838 / 0.885 / 0.842 for 2 / 6 / 10 layers (best depth 6 by both).")


def run_dir(runs: Path, layers: int, seed: int) -> Path:
    return runs / sweep_run_name("question-formation", layers, seed)


def train_all(args, runs: Path) -> None:
    """One sweep (lmscope.train.sweep, the code behind `lmscope grok sweep`): every depth x seed to
    --steps, the --long-seeds to --long-steps; longest runs first so the cores stay busy."""
    jobs = []
    for seed in args.seeds:
        steps = args.long_steps if seed in args.long_seeds else args.steps
        jobs += grok_sweep_jobs("question-formation", runs, args.layers, [seed], steps, **SETTINGS)
    jobs.sort(key=lambda j: -j.steps * int(j.name.split("-l")[1].split("-")[0]))
    res = run_sweep(jobs, runs, workers=args.jobs, threads=1)
    if res["failed"]:
        raise SystemExit(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])}")


def seeds_arg(seeds: list[int]) -> str:
    """``--seeds`` of a command line (a list; one seed as ``3-3``, since a bare number is refused)."""
    return f"{seeds[0]}-{seeds[0]}" if len(seeds) == 1 else ",".join(map(str, seeds))


def at_step(rows: list[dict], step: int, key: str):
    """The value logged at ``step`` (or the last evaluation before it); None until the run gets there."""
    if not rows or rows[-1]["step"] < step:
        return None
    hit = [r for r in rows if r["step"] <= step]
    return hit[-1].get(key) if hit else None


def fmt(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def mean_sd(xs: list[float]) -> str:
    if not xs:
        return "–"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.2f}"
    sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5
    return f"{m:.2f} ± {sd:.2f}"


def depth_table(runs_info: list[dict], step: int, png: Path) -> list[str]:
    """Per depth, over the seeds that reached ``step``: generalization accuracy, t-score and F1 there;
    which depth is best by each; the rank correlation of t-score and generalization across runs."""
    from scipy.stats import spearmanr

    from lmscope.report.plots import plt, save_figure

    pts = []
    for r in runs_info:
        rows = r["rows"]
        g, t, f = (at_step(rows, step, k) for k in ("gen_acc", "t_score", "f1"))
        if g is not None and t is not None:
            pts.append({"layers": r["layers"], "gen": g, "t": t, "f1": f, "name": r["name"]})
    depths = sorted({p["layers"] for p in pts})
    if len(depths) < 2:
        return []
    out = ["| layers | runs | gen acc (mean ± sd) | t-score | F1 |", "|---|---|---|---|---|"]
    means = {}
    for d in depths:
        ps = [p for p in pts if p["layers"] == d]
        means[d] = (sum(p["gen"] for p in ps) / len(ps), sum(p["t"] for p in ps) / len(ps))
        out.append(f"| {d} | {len(ps)} | {mean_sd([p['gen'] for p in ps])} | {mean_sd([p['t'] for p in ps])} | "
                   f"{mean_sd([p['f1'] for p in ps if p['f1'] is not None])} |")
    best_gen = max(depths, key=lambda d: means[d][0])
    best_t = max(depths, key=lambda d: means[d][1])
    rho, pval = spearmanr([p["t"] for p in pts], [p["gen"] for p in pts])
    out += ["", f"Best depth by mean generalization accuracy: **{best_gen}** layers; by mean t-score: "
            f"**{best_t}** layers. Spearman correlation of t-score and generalization accuracy over the "
            f"{len(pts)} runs: ρ = {rho:.2f} (p = {pval:.2f}).", ""]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "gen", f"generalization accuracy at {step // 1000}k"),
                           (axes[1], "t", f"t-score at {step // 1000}k")):
        for d in depths:
            ys = [p[key] for p in pts if p["layers"] == d]
            ax.plot([d] * len(ys), ys, "o", color="C0", alpha=0.4, ms=4)
        ax.plot(depths, [means[d][0 if key == "gen" else 1] for d in depths], "-", color="C0", lw=2)
        ax.set_xlabel("layers")
        ax.set_ylabel(label)
        ax.set_xticks(depths)
    save_figure(fig, png)
    out += [f"![depth](figures/grokking/{png.name})", ""]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="2,4", help="depths (default 2,4)")
    ap.add_argument("--seeds", metavar="LIST", help="seeds, a list such as 0,1,2 or 0-2 (default: seed 0)")
    ap.add_argument("--n-seeds", metavar="N", help="seeds 0..N-1 (not with --seeds)")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--long-seeds", default="", help="seeds trained to --long-steps instead (default none)")
    ap.add_argument("--long-steps", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--runs", default="runs/grok")
    ap.add_argument("--doc", default="docs/results/structural-grokking.md")
    ap.add_argument("--report-only", action="store_true", help="only the page, from the runs so far")
    args = ap.parse_args(argv)
    try:  # the seed rules of `lmscope grok sweep`
        args.layers = int_list(args.layers, "--layers")
        args.seeds = sweep_seeds(args.seeds, args.n_seeds)
        args.long_seeds = int_list(args.long_seeds, "--long-seeds") if args.long_seeds.strip() else []
    except LmscopeError as e:
        ap.error(str(e))
    if args.long_seeds and args.long_steps < 1:
        ap.error("--long-seeds needs --long-steps")
    runs, doc = Path(args.runs), Path(args.doc)
    if not args.report_only:
        try:
            train_all(args, runs)
        except KeyboardInterrupt:
            print("interrupted: the runs stopped at their last checkpoint; the same command resumes them",
                  file=sys.stderr)
            return 130
    dirs = [run_dir(runs, L, s) for L in args.layers for s in args.seeds if (run_dir(runs, L, s) / "metrics.jsonl").is_file()]
    figs = doc.parent / "figures"
    plot_runs([str(d) for d in dirs], figs / "grokking", force=True)  # the page's own figure folder
    runs_info = [load_run(d) for d in dirs]
    common = args.steps  # every run reaches this step; the depth comparison is made there
    cmd = ("PYTHONPATH=src .venv/bin/python experiments/structural_grokking.py"
           + f" --layers {','.join(map(str, args.layers))} --seeds {seeds_arg(args.seeds)}"
           + f" --steps {args.steps}"
           + (f" --long-seeds {','.join(map(str, args.long_seeds))} --long-steps {args.long_steps}"
              if args.long_seeds else ""))
    lines = [
        "# Structural grokking at CPU scale",
        "",
        "*Grokking of Hierarchical Structure in Vanilla Transformers* (Murty, Sharma, Andreas & Manning, 2023): "
        "trained long enough, transformers learn the hierarchical rule of question formation long after they "
        "fit the training data, and the depth that generalizes best is also the most tree-structured.",
        "",
        PAPER,
        "",
        "Regenerate (trains or resumes the runs as one sweep, then writes this page; `--report-only` only "
        "rewrites the page from the runs so far):",
        "",
        "```",
        cmd,
        "```",
        "",
        "The same runs with the CLI: `lmscope grok sweep --task question-formation --layers "
        f"{','.join(map(str, args.layers))} --seeds {seeds_arg(args.seeds)} --steps {args.steps} --eval-every 1000 "
        "--ckpt-every 5000 --n-train 10000 --out runs/grok` (add `--ray auto` to run them on a Ray cluster).",
        "",
        "Our scale: d_model 64, 4 heads, FFN 256, post-LN, sinusoidal positions, AdamW lr 1e-4 (constant after "
        "1,000 warmup steps), batch 8, 10,000 training lines of the bundled question-formation grammar (58 "
        "words), evaluation every 1,000 steps on 200 validation and 200 generalization questions (first word "
        "among do/does/don't/doesn't) and tree projections of 50 declaratives. Runs train on one thread each, "
        "two at a time on 2 CPU cores.",
        "",
        "## Every run",
        "",
        "| run | layers | steps so far | id acc ≥ 0.99 first at | gen acc @ 9k | @ 30k | @ 50k | @ 100k "
        "| peak gen acc (step) | latest gen acc | latest t-score | latest F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs_info:
        rows = r["rows"]
        sat = next((x["step"] for x in rows if (x.get("id_acc") or 0) >= 0.99), None)
        last = rows[-1]
        peak = max(rows, key=lambda x: x.get("gen_acc") or 0)
        lines.append(f"| {r['name']} | {r['layers']} | {last['step']:,} | {'–' if sat is None else f'{sat:,}'} | "
                     f"{fmt(at_step(rows, 9000, 'gen_acc'))} | {fmt(at_step(rows, 30000, 'gen_acc'))} | "
                     f"{fmt(at_step(rows, 50000, 'gen_acc'))} | {fmt(at_step(rows, 100000, 'gen_acc'))} | "
                     f"{fmt(peak.get('gen_acc'))} ({peak['step'] // 1000}k) | {fmt(last.get('gen_acc'))} | "
                     f"{fmt(last.get('t_score'))} | {fmt(last.get('f1'))} |")
    lines += ["", "![accuracy](figures/grokking/accuracy.png)", "", "![t-score](figures/grokking/t_score.png)", ""]
    depth_lines = depth_table(runs_info, common, figs / "grokking" / "depth_at_step.png")
    if depth_lines:
        lines += [f"## Depth at {common // 1000}k steps", ""] + depth_lines
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
