"""Structural grokking at CPU scale: question formation, small transformers of several depths.

Trains (or resumes) one run per depth and seed as a sweep (the code of `lmscope grok sweep`: one
`lmscope grok train` process per run, at most --jobs at a time, one thread each), plots them and writes
docs/results/structural-grokking.md: the setup against the paper's and the authors' code, per run the
monitored generalization along training and the held-out scores of the final step (accuracy, how often
the model fronts the first auxiliary, the linear rule's score), and per depth the held-out accuracy and
final t-score, next to the paper's numbers.

Runs live in --runs and resume where they stopped, so the page can be regenerated at any time
(with the steps reached so far) and the runs continued later by the same command.

    .venv/bin/python experiments/structural_grokking.py --layers 6,2 --seeds 0,1,2 --steps 50000   # the page
    .venv/bin/python experiments/structural_grokking.py --layers 2,4,6,8,10 --seeds 0-2 --steps 300000
    .venv/bin/python experiments/structural_grokking.py --layers 6,2 --seeds 0,1,2 --steps 50000 --report-only
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
        for layers in args.layers:
            long = seed in args.long_seeds and (not args.long_layers or layers in args.long_layers)
            jobs += grok_sweep_jobs("question-formation", runs, [layers], [seed],
                                    args.long_steps if long else args.steps, **SETTINGS)
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


def final_row(rows: list[dict], step: int | None = None) -> dict | None:
    """The row of the final step that carries the held-out scores (None before the run ends); with
    ``step``, the row of that step if the held-out rows were scored there (a run that ended at ``step``
    and was continued later keeps that row)."""
    hits = [r for r in rows if r.get("test_gen_acc") is not None and (step is None or r["step"] == step)]
    return hits[-1] if hits else None


def monitor_steps(last: int) -> list[int]:
    """The steps of the monitoring columns: every 10k to 50k, then every 25k to the longest run."""
    return list(range(10000, 50001, 10000)) + list(range(75000, last + 1, 25000))


def ci(acc: float | None, n: int | None) -> str:
    """A held-out accuracy with its 95 % Wilson interval."""
    from lmscope.evaluation.game import wilson

    if acc is None or not n:
        return "–"
    lo, hi = wilson(round(acc * n), n)
    return f"{acc:.2f} [{lo:.2f}, {hi:.2f}]"


def depth_table(points: list[dict], png: Path) -> list[str]:
    """Per depth, over the seeds that finished: held-out generalization accuracy, how often the model
    fronts the first auxiliary, t-score and F1; the best depth by each; the rank correlation of t-score
    and generalization across runs."""
    from scipy.stats import spearmanr

    from lmscope.report.plots import plt, save_figure

    depths = sorted({p["layers"] for p in points})
    if not depths:
        return []
    out = ["| layers | runs | held-out gen acc (mean ± sd) | per seed | fronts the first auxiliary | "
           "held-out id acc | t-score | F1 |", "|---|---|---|---|---|---|---|---|"]
    means = {}
    for d in depths:
        ps = [p for p in points if p["layers"] == d]
        means[d] = (sum(p["gen"] for p in ps) / len(ps), sum(p["t"] for p in ps) / len(ps))
        per_seed = ", ".join(f"{p['gen']:.2f}" for p in ps)
        out.append(f"| {d} | {len(ps)} | {mean_sd([p['gen'] for p in ps])} | {per_seed} | "
                   f"{mean_sd([p['first'] for p in ps])} | {mean_sd([p['id'] for p in ps])} | "
                   f"{mean_sd([p['t'] for p in ps])} | {mean_sd([p['f1'] for p in ps if p['f1'] is not None])} |")
    out.append("")
    if len(depths) >= 2:
        best_gen = max(depths, key=lambda d: means[d][0])
        best_t = max(depths, key=lambda d: means[d][1])
        rho, pval = spearmanr([p["t"] for p in points], [p["gen"] for p in points])
        out += [f"Best depth by mean held-out generalization: **{best_gen}** layers; by mean t-score: "
                f"**{best_t}** layers. Spearman correlation of the t-score and held-out generalization at that step "
                f"over the {len(points)} runs: ρ = {rho:.2f} (p = {pval:.2f}; {len(points)} points, so only a "
                "large correlation would show).", ""]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "gen", "held-out generalization accuracy"), (axes[1], "t", "t-score")):
        for d in depths:
            ys = [p[key] for p in points if p["layers"] == d]
            ax.plot([d] * len(ys), ys, "o", color="C0", alpha=0.4, ms=4)
        ax.plot(depths, [means[d][0 if key == "gen" else 1] for d in depths], "-", color="C0", lw=2)
        if key == "gen":
            ax.axhline(0.0, color="C3", lw=1, ls=":", label="linear rule")
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel("layers")
        ax.set_ylabel(label)
        ax.set_xticks(depths)
    save_figure(fig, png)
    return out + [f"![depth](figures/grokking/{png.name})", ""]


SETUP = [
    # (what, ours, paper's text, authors' code, kind of difference)
    ("width d_model", "64", "512", "512 (`--vec_dim`)", "scale"),
    ("attention heads", "4", "8", "4 (`--n_heads` default)", "scale (the code's default is ours)"),
    ("FFN width", "256", "2,048", "512 (`ff_multiplier` 1 × d_model)", "scale"),
    ("depths", "{depths}", "2, 4, 6, 8, 10 (best 6)", "`--encoder_n_layers`", "scale (compute: {n_depths} depths fit)"),
    ("block", "post-LN, ReLU, sinusoidal positions", "post-LN, sinusoidal", "post-LN, ReLU, sinusoidal", "same"),
    ("dropout", "0.1", "0.1", "0.1", "same"),
    ("optimizer", "AdamW, lr 1e-4, weight decay 0, eps 1e-8", "AdamW, lr 1e-4", "AdamW, lr 1e-4, weight decay 0, "
     "eps 1e-7", "same (eps differs)"),
    ("schedule", "linear warmup 10,000 steps, then constant", "10k warmup", "linear warmup 10,000, then linear "
     "decay to 0 at 2M steps (within 15 % of the peak over 300k)", "same in effect"),
    ("gradient clipping", "1.0", "1", "`max_grad_norm` 1", "same"),
    ("batch size", "8", "8", "`train_batch_size` 8", "same"),
    ("training steps", "{steps}", "300,000", "evaluated every 10,000", "scale"),
    ("training data", "100,000 lines of our question-formation grammar (58 words), half identity (`decl`)",
     "McCoy et al.'s question formation (~70 words), 100,000 lines", "`question.train` (McCoy et al.)",
     "setup: our own grammar (same rules, fewer words); size the same"),
    ("generalization set", "relative clause on the subject, its auxiliary a different word from the main one "
     "(the linear rule's first word is always wrong)", "McCoy et al.'s generalization set (the same property)",
     "`question.test`, 10,000 lines", "same construction"),
    ("metric", "first word of the question, argmax over do/does/don't/doesn't", "the same", "the same", "same"),
    ("reported accuracy", "the final step's, on 1,000 held-out generalization questions scored only then "
     "(200 others are monitored every 2,000 steps)", "accuracy along training", "val/test every 10,000 steps",
     "stricter than the paper"),
    ("tree projections", "50 training-split declaratives, last layer, span mask from block 0, cosine",
     "t-score of the trained models", "10,000 training-split sentences (`--split train`)", "scale (sentences)"),
    ("initialization", "N(0, 0.02²), embeddings × √d", "–", "Xavier, embeddings × √d (`opennmt` scaling)",
     "setup (minor)"),
]


def setup_table(args) -> list[str]:
    seeds = "seed" if len(args.long_seeds) == 1 else "seeds"
    where = ("depths " + ", ".join(map(str, args.long_layers))) if args.long_layers else "every depth"
    steps = f"{args.steps:,}" + (f" ({seeds} {', '.join(map(str, args.long_seeds))} of {where}: "
                                 f"{args.long_steps:,})" if args.long_seeds else "")
    names = ["zero", "one", "two", "three", "four", "five"]
    n = len(args.layers)
    fill = {"{depths}": ", ".join(map(str, sorted(args.layers))), "{steps}": steps,
            "{n_depths}": names[n] if n < len(names) else str(n)}
    out = ["| | ours | paper (text) | authors' code | difference |", "|---|---|---|---|---|"]
    for row in SETUP:
        cells = []
        for cell in row:
            for k, v in fill.items():
                cell = cell.replace(k, v)
            cells.append(cell)
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def longer_runs(runs_info: list[dict], steps: int) -> list[str]:
    """The runs trained past ``steps``: the held-out scores at ``steps`` (scored when it was their last
    step) and at their final step, and the monitored generalization in between."""
    long = [r for r in runs_info if r["rows"][-1]["step"] > steps and final_row(r["rows"]) is not None]
    if not long:
        return []
    last = max(r["rows"][-1]["step"] for r in long)
    marks = list(range(steps + 10000, last + 1, 10000))
    out = [f"Runs continued past {steps:,} steps (the same run, resumed: constant learning rate after warmup). "
           f"Their held-out rows were scored at {steps:,} steps, when that was the last step, and again at the "
           "final step; nothing was chosen from them. Monitored generalization (200 questions) in between; the "
           "most the monitored accuracy reached after step " + f"{steps:,} is in its own column.", "",
           f"| run | layers | held-out gen acc @ {steps // 1000}k | @ final | fronts first aux @ {steps // 1000}k "
           "| @ final | held-out id acc @ final | "
           + " | ".join(f"monitored gen @ {m // 1000}k" for m in marks) + " | monitored max after "
           f"{steps // 1000}k | t-score @ {steps // 1000}k | @ final |",
           "|" + "---|" * (10 + len(marks))]
    for r in long:
        rows = r["rows"]
        a, b = final_row(rows, steps) or {}, final_row(rows)
        after = [x["gen_acc"] for x in rows if x["step"] > steps and x.get("gen_acc") is not None]
        out.append(f"| {r['name']} | {r['layers']} | {ci(a.get('test_gen_acc'), a.get('test_gen_n'))} | "
                   f"{ci(b.get('test_gen_acc'), b.get('test_gen_n'))} | {fmt(a.get('test_gen_first_aux'))} | "
                   f"{fmt(b.get('test_gen_first_aux'))} | {ci(b.get('test_id_acc'), b.get('test_id_n'))} | "
                   + " | ".join(fmt(at_step(rows, m, "gen_acc")) for m in marks)
                   + f" | {fmt(max(after) if after else None)} | {fmt(at_step(rows, steps, 't_score'))} | "
                   f"{fmt(b.get('t_score'))} |")
    return out + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="2,4", help="depths (default 2,4)")
    ap.add_argument("--seeds", metavar="LIST", help="seeds, a list such as 0,1,2 or 0-2 (default: seed 0)")
    ap.add_argument("--n-seeds", metavar="N", help="seeds 0..N-1 (not with --seeds)")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--long-seeds", default="", help="seeds trained to --long-steps instead (default none)")
    ap.add_argument("--long-steps", type=int, default=0)
    ap.add_argument("--long-layers", default="", help="the depths of the --long-seeds runs (default every depth)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--runs", default="runs/grok")
    ap.add_argument("--doc", default="docs/results/structural-grokking.md")
    ap.add_argument("--report-only", action="store_true", help="only the page, from the runs so far")
    args = ap.parse_args(argv)
    try:  # the seed rules of `lmscope grok sweep`
        args.layers = int_list(args.layers, "--layers")
        args.seeds = sweep_seeds(args.seeds, args.n_seeds)
        args.long_seeds = int_list(args.long_seeds, "--long-seeds") if args.long_seeds.strip() else []
        args.long_layers = int_list(args.long_layers, "--long-layers") if args.long_layers.strip() else []
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
    marks = monitor_steps(max((r["rows"][-1]["step"] for r in runs_info), default=0))
    cmd = ("PYTHONPATH=src .venv/bin/python experiments/structural_grokking.py"
           + f" --layers {','.join(map(str, args.layers))} --seeds {seeds_arg(args.seeds)}"
           + f" --steps {args.steps}"
           + (f" --long-seeds {','.join(map(str, args.long_seeds))}"
              + (f" --long-layers {','.join(map(str, args.long_layers))}" if args.long_layers else "")
              + f" --long-steps {args.long_steps}" if args.long_seeds else ""))
    cli_options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in SETTINGS.items())
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
        f"{','.join(map(str, args.layers))} --seeds {seeds_arg(args.seeds)} --steps {args.steps} {cli_options} "
        "--out runs/grok` (add `--ray auto` to run them on a Ray cluster)"
        + (f"; the longer runs are the same command with `--seeds {seeds_arg(args.long_seeds)} --layers "
           f"{','.join(map(str, args.long_layers or args.layers))} --steps {args.long_steps}`, which continues them"
           if args.long_seeds else "")
        + ". Runs train on one thread each, two at a time on 2 CPU cores.",
        "",
        "## Setup against the paper's",
        "",
        "The paper's text where it gives a setting, the authors' code (`MurtyShikhar/structural-grokking`: "
        "`train_transformers.py`, `training_utils.py`, `models/transformer_lm.py`, `transformer_lm_sci.py`) "
        "where it does not.",
        "",
        *setup_table(args),
        "## Every run",
        "",
        "Monitoring (200 generalization questions, every 2,000 steps, never used for a choice) and the final "
        "held-out scores (1,000 other questions of each kind, scored at the last step only, and for a continued run "
        "also where it first ended; 95 % Wilson "
        "intervals). *Fronts first aux*: how often the model's first word is the sentence's first auxiliary, "
        "which is what the linear rule does; the linear rule itself scores 0 on every generalization question.",
        "",
        "| run | layers | steps | id acc ≥ 0.99 first at | "
        + " | ".join(("monitored gen acc @ " if i == 0 else "@ ") + f"{m // 1000}k" for i, m in enumerate(marks))
        + " | held-out gen acc | fronts first aux | linear rule | held-out id acc | t-score | F1 |",
        "|" + "---|" * (10 + len(marks)),
    ]
    points = []
    for r in runs_info:
        rows = r["rows"]
        sat = next((x["step"] for x in rows if (x.get("id_acc") or 0) >= 0.99), None)
        last, fin = rows[-1], final_row(rows)
        g = fin or {}
        lines.append(f"| {r['name']} | {r['layers']} | {last['step']:,} | {'–' if sat is None else f'{sat:,}'} | "
                     + " | ".join(fmt(at_step(rows, m, "gen_acc")) for m in marks) + " | "
                     f"{ci(g.get('test_gen_acc'), g.get('test_gen_n'))} | {fmt(g.get('test_gen_first_aux'))} | "
                     f"{fmt(g.get('test_gen_linear'))} | {ci(g.get('test_id_acc'), g.get('test_id_n'))} | "
                     f"{fmt(last.get('t_score'))} | {fmt(last.get('f1'))} |")
        at = final_row(rows, args.steps)  # the depth comparison: every run at the same step count
        if at is not None and at.get("t_score") is not None:
            points.append({"layers": r["layers"], "gen": at["test_gen_acc"], "first": at["test_gen_first_aux"],
                           "id": at["test_id_acc"], "t": at["t_score"], "f1": at.get("f1"), "name": r["name"]})
    lines += ["", "![accuracy](figures/grokking/accuracy.png)", "", "![t-score](figures/grokking/t_score.png)", ""]
    depth_lines = depth_table(points, figs / "grokking" / "depth_at_step.png")
    if depth_lines:
        lines += [f"## Depth at {args.steps:,} steps", "",
                  f"Every run's held-out scores at {args.steps:,} steps (scored when that was its last step, "
                  "also for the runs continued later).", ""] + depth_lines
    long_lines = longer_runs(runs_info, args.steps)
    if long_lines:
        lines += ["## Longer runs", ""] + long_lines
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
