"""Tree projections: small transformers trained on the question-formation grammar (along training,
against their own random initialization), and the bundled real models per layer.

Grammar-trained models (the structural-grokking runs, ``--grok-runs``, e.g. ``runs/grok`` written by
``lmscope grok sweep --task question-formation ... --keep-checkpoints 0``): for every run,

* the t-score and parsing F1 the run logged at every evaluation (50 fixed training-split sentences,
  threshold 0, last layer), with the same numbers computed now for the initial model (step 0, the
  seeded random initialization) as the control;
* at every kept checkpoint and at step 0, the tree projections of ``--grok-n`` training sentences
  (the same seeded draw as the logged ones): threshold 0 everywhere, thresholds 0 .. depth/2 at the
  steps of ``--sweep-steps`` (and the last one); the gaps trained - initial of the t-score and F1 with
  seeded bootstrap intervals over sentences;
* the correlation, across runs, of the final t-score and F1 with held-out generalization.

Bundled models: SmolLM2-135M and MiniLM per layer on grammar declaratives (skip with
``--skip-bundled``; the page then keeps its earlier bundled section).

    .venv/bin/python experiments/tree_projections.py --grok-runs runs/grok --skip-bundled
    .venv/bin/python experiments/tree_projections.py --grok-runs runs/grok          # both parts

Writes docs/results/tree-projections.md (or --doc) and its figures; per-checkpoint projections are
cached under --runs (reused when the checkpoint and settings are unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from _doc import md_table  # noqa: E402

from lmscope._io import atomic_dir, write_json  # noqa: E402
from lmscope.data.suites import gold_sentences  # noqa: E402
from lmscope.errors import LmscopeError  # noqa: E402

MODELS = {"smollm2-135m": [3, 6, 9, 12, 15, 18, 21, 24, 27, 30], "minilm-l6": [1, 2, 3, 4, 5, 6]}
PLACEHOLDER = "READING_PLACEHOLDER"
FIGS = "figures"


# ------------------------------------------------------------------------------------------------
# Grammar-trained runs
# ------------------------------------------------------------------------------------------------
def find_runs(root: Path) -> list[Path]:
    """Question-formation run folders under ``root`` with metrics, by (depth, seed)."""
    found = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        f = p / "run.json"
        if not (f.is_file() and (p / "metrics.jsonl").is_file()):
            continue
        info = json.loads(f.read_text())
        if (info.get("meta") or {}).get("task") == "question-formation":
            found.append((int(info["model"]["n_layers"]), int(info["train"]["seed"]), p))
    if not found:
        raise LmscopeError(f"no question-formation runs with metrics under {root}")
    return [p for *_, p in sorted(found)]


def shuffle_words(sentences, seed: int) -> list[list[str]]:
    """Each sentence's words in a seeded random order (the control with the grammar's structure removed)."""
    rng = np.random.default_rng(seed)
    return [[ws[i] for i in rng.permutation(len(ws))] for ws in (s.split() if isinstance(s, str) else list(s)
                                                                 for s in sentences)]


def _model_sha(run_dir: Path, step: int) -> str:
    if step == 0:
        return "init"
    manifest = json.loads((run_dir / "checkpoints" / f"step-{step:07d}" / "manifest.json").read_text())
    return manifest["files"].get("model/model.safetensors", "")


def project(model, tokenizer, sentences, trees, threshold: int, seed: int):
    from lmscope.trees import tree_projection

    return tree_projection((model, tokenizer), sentences, gold_trees=trees, threshold=threshold, seed=seed,
                           quiet=True)


def analyse_run(run_dir: Path, args, data_cache: dict) -> dict:
    """Everything the page needs of one run (projections cached per checkpoint under ``args.runs``)."""
    from lmscope.grokking import SentenceScores, checkpoint_steps, load_run, rebuild_run, run_model

    run = load_run(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    key = (info["data"]["sha256"], info["tokenizer"]["vocab_sha256"], json.dumps(info["meta"], sort_keys=True))

    def data():  # the suite is rebuilt only when a projection is not cached (seconds per run)
        if key not in data_cache:
            t0 = time.time()
            data_cache[key] = rebuild_run(run_dir)
            print(f"  rebuilt the suite of {run_dir.name} ({time.time() - t0:.0f} s)", flush=True)
        return data_cache[key]

    layers, seed = run["layers"], int(info["train"]["seed"])
    steps = [0] + [s for s in checkpoint_steps(run_dir, min_age=args.min_age) if not args.at_step or s <= args.at_step]
    sweep = {s for s in args.sweep_steps if s in steps} | {steps[-1]}
    thresholds = list(range(layers // 2 + 1))
    cache_dir = Path(args.runs) / "grok" / run_dir.name
    per_step = {}
    for step in steps:
        f = cache_dir / f"step-{step:07d}.json"
        want = thresholds if step in sweep else [0]
        sha = _model_sha(run_dir, step)
        got = json.loads(f.read_text()) if f.is_file() else {}
        if got.get("model") != sha or got.get("n") != args.grok_n or got.get("seed") != seed:
            got = {"model": sha, "n": args.grok_n, "seed": seed, "thresholds": {}}
        missing = [t for t in want if str(t) not in got["thresholds"]]
        if missing or "logged" not in got or (step in sweep and "shuffled_t" not in got):
            d = data()
            sents, trees = d.tree_set(args.grok_n)
            model = run_model(run_dir, step)
            for t in missing:
                res = project(model, d.tokenizer, sents, trees, t, seed)
                got["thresholds"][str(t)] = SentenceScores.from_result(res).to_dict()
                if step == 0 and t == 0:
                    got["baseline_f1"] = res.baseline_f1
            if step in sweep and "shuffled_t" not in got:
                res = project(model, d.tokenizer, shuffle_words(sents, seed), None, 0, seed)
                got["shuffled_t"] = [x.t_score for x in res.sentences]
            if "logged" not in got:
                res = project(model, d.tokenizer, d.tree_sentences, d.tree_trees, 0, seed)
                got["logged"] = {"t_score": res.t_score, "f1": res.f1}
                if step == 0:
                    got["logged_baseline_f1"] = res.baseline_f1
            write_json(f, got)
        per_step[step] = got
    rows = run["rows"]
    trained = int(info["train"]["steps"])
    if args.at_step:  # a run continued past --at-step is read as it was there (its held-out row was scored then)
        rows = [r for r in rows if r["step"] <= args.at_step]
        trained = min(trained, args.at_step)
    final = rows[-1]
    return {"name": run_dir.name, "layers": layers, "seed": seed, "rows": rows, "steps": steps,
            "sweep": sorted(sweep), "thresholds": thresholds, "per_step": per_step,
            "n_logged": int(info["meta"]["eval"]["tree_sample"]), "final": final, "trained_steps": trained}


def _scores(res: dict, step: int, threshold: int = 0):
    from lmscope.grokking import SentenceScores

    return SentenceScores.from_dict(res["per_step"][step]["thresholds"][str(threshold)])


def spearman_perm(x, y) -> tuple[float, float, float]:
    """Spearman rho, Pearson r, and the exact two-sided permutation p-value of rho (n <= 8)."""
    import itertools

    from scipy.stats import pearsonr, rankdata

    x, y = np.asarray(x, float), np.asarray(y, float)
    rx, ry = rankdata(x), rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    r = float(pearsonr(x, y)[0])
    perms = [float(np.corrcoef(rx, np.asarray(p))[0, 1]) for p in itertools.permutations(ry)]
    p = float(np.mean([abs(v) >= abs(rho) - 1e-12 for v in perms]))
    return rho, r, p


def _fmt_ci(v, lo, hi, scale=1.0, digits=2) -> str:
    return f"{scale * v:+.{digits}f} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]"


def _mean_sd(vals, scale=1.0, digits=1) -> str:
    return f"{scale * np.mean(vals):.{digits}f} ± {scale * np.std(vals):.{digits}f}"


def grok_section(results: list[dict], args, figs: Path) -> tuple[list[str], dict]:
    from lmscope.grokking import SentenceScores, gap_intervals

    depths = sorted({r["layers"] for r in results})
    by_depth = {d: [r for r in results if r["layers"] == d] for d in depths}
    finished = [r for r in results if r["final"]["step"] >= r["trained_steps"] and "test_gen_acc" in r["final"]]
    complete = len(finished) == len(results) and all(r["steps"][-1] >= r["trained_steps"] for r in results)
    lines: list[str] = []
    # --- along training (the logged values, step 0 computed now)
    wanted = {0, 2000, 5000, 10000, 20000, 30000, 40000, 50000}
    table = []
    for d in depths:
        logged = {s for r in by_depth[d] for s in (row["step"] for row in r["rows"])}
        for s in sorted((wanted & logged) | {0} | {max(logged)}):
            t_vals, f_vals = [], []
            for r in by_depth[d]:
                if s == 0:
                    t_vals.append(r["per_step"][0]["logged"]["t_score"])
                    f_vals.append(r["per_step"][0]["logged"]["f1"])
                for row in r["rows"]:
                    if row["step"] == s:
                        t_vals.append(row["t_score"])
                        f_vals.append(row["f1"])
            table.append([d, f"{s:,}", len(t_vals), _mean_sd(t_vals, digits=4), _mean_sd(f_vals, 100)])
    base = results[0]["per_step"][0]["logged_baseline_f1"]
    lines += ["### Along training", "",
              f"The t-score and F1 each run logged every {results[0]['rows'][0]['step']:,} steps on its "
              f"{results[0]['n_logged']} fixed training sentences (threshold 0, last layer); step 0 is the run's "
              "initial model (its seeded random initialization, rebuilt with `lmscope.grokking.initial_model`), "
              "projected now on the same sentences. Mean ± standard deviation over the seeds that reached the step.",
              "", md_table(["layers", "step", "seeds", "t-score", "F1 (%)"], table), "",
              "F1 of trees that ignore the model, on run "
              f"{results[0]['name']}'s logged sentences: " + ", ".join(
                  f"{k} {100 * v:.1f} %" for k, v in base.items()) + ".", "",
              "![training](figures/trees-grok-training.png)", ""]
    plot_training(results, figs / "trees-grok-training.png", base.get("right"))
    # --- gaps with bootstrap intervals
    n = results[0]["per_step"][0]["n"]
    gap_rows, depth_gap = [], {}
    for d in depths:
        for s in sorted({s for r in by_depth[d] for s in r["sweep"]} - {0}):
            runs = [r for r in by_depth[d] if s in r["sweep"]]
            pairs = [(_scores(r, s), _scores(r, 0)) for r in runs]
            g = gap_intervals(pairs, n_boot=args.boot, seed=args.seed)
            depth_gap[(d, s)] = g
            spread_t = [a.t_score - b.t_score for a, b in pairs]
            spread_f = [100 * (a.f1 - b.f1) for a, b in pairs]
            gap_rows.append([d, f"{s:,}", f"mean of {len(runs)} seeds" if len(runs) > 1 else f"seed {runs[0]['seed']}",
                             f"{np.mean([b.t_score for _, b in pairs]):.4f}",
                             f"{np.mean([a.t_score for a, _ in pairs]):.3f}",
                             _fmt_ci(g["t_gap"], g["t_lo"], g["t_hi"]),
                             f"{100 * np.mean([b.f1 for _, b in pairs]):.1f}",
                             f"{100 * np.mean([a.f1 for a, _ in pairs]):.1f}",
                             _fmt_ci(g["f1_gap"], g["f1_lo"], g["f1_hi"], 100, 1),
                             f"t {min(spread_t):+.2f}..{max(spread_t):+.2f}; F1 {min(spread_f):+.1f}..{max(spread_f):+.1f}"
                             if len(runs) > 1 else ""])
        for r in by_depth[d]:
            last = r["steps"][-1]
            if last == 0 or len(by_depth[d]) == 1:
                continue
            a, b = _scores(r, last), _scores(r, 0)
            g = gap_intervals([(a, b)], n_boot=args.boot, seed=args.seed)
            gap_rows.append([d, f"{last:,}", f"seed {r['seed']}", f"{b.t_score:.4f}", f"{a.t_score:.3f}",
                             _fmt_ci(g["t_gap"], g["t_lo"], g["t_hi"]), f"{100 * b.f1:.1f}", f"{100 * a.f1:.1f}",
                             _fmt_ci(g["f1_gap"], g["f1_lo"], g["f1_hi"], 100, 1), ""])
    lines += ["### Trained against initial, with intervals", "",
              f"{n} training sentences per run (the same seeded draw as the logged ones, which are among them), "
              "threshold 0, last layer, at kept checkpoints and at step 0. Gap = trained − initial on the same "
              f"sentences; 95 % percentile bootstrap intervals over sentences ({args.boot} replicates, seed "
              f"{args.seed}); for the mean of seeds each replicate redraws every run's sentences, so the interval "
              "is conditional on the seeds (their spread is the last column). Per-seed rows: each run's last "
              "kept checkpoint.", "",
              md_table(["layers", "step", "run", "t init", "t trained", "t gap [95 % CI]", "F1 init (%)",
                        "F1 trained (%)", "F1 gap, points [95 % CI]", "spread of the seeds' gaps"], gap_rows), "",
              "F1 of trees that ignore the model on the same sentences (mean over runs): " + ", ".join(
                  f"{k} {100 * np.mean([r['per_step'][0]['baseline_f1'][k] for r in results]):.1f} %"
                  for k in results[0]["per_step"][0]["baseline_f1"]) + ".", ""]
    # --- threshold sweep
    sweep_rows = []
    for d in depths:
        for s in sorted({s for r in by_depth[d] for s in r["sweep"]}):
            runs = [r for r in by_depth[d] if s in r["sweep"]]
            for t in runs[0]["thresholds"]:
                sc = [_scores(r, s, t) for r in runs]
                sweep_rows.append([d, f"{s:,}", len(runs), t, _mean_sd([x.t_score for x in sc], digits=3),
                                   _mean_sd([x.f1 for x in sc], 100)])
    lines += ["### Threshold sweep", "",
              "The span mask starts at block *threshold* (0 = every block sees only the span; as the reference, "
              "0 .. depth/2). Same sentences as above; mean ± standard deviation over seeds.", "",
              md_table(["layers", "step", "seeds", "threshold", "t-score", "F1 (%)"], sweep_rows), ""]
    # --- shuffled-word control
    shuf_rows = []
    for d in depths:
        for s in sorted({s for r in by_depth[d] for s in r["sweep"]}):
            runs = [r for r in by_depth[d] if s in r["sweep"]]
            t_g = [_scores(r, s).t_score for r in runs]
            t_s = [float(np.mean(r["per_step"][s]["shuffled_t"])) for r in runs]
            pairs = [(_scores(r, s), SentenceScores(r["per_step"][s]["shuffled_t"],
                                                    np.zeros((len(r["per_step"][s]["shuffled_t"]), 3))))
                     for r in runs]
            g = gap_intervals(pairs, n_boot=args.boot, seed=args.seed)
            shuf_rows.append([d, f"{s:,}", len(runs), f"{np.mean(t_g):.4g}", f"{np.mean(t_s):.4g}",
                              _fmt_ci(g["t_gap"], g["t_lo"], g["t_hi"], digits=3 if s else 6),
                              " / ".join(f"{a / b:.2f}" for a, b in zip(t_g, t_s))])
    lines += ["### Against shuffled sentences", "",
              "The raw t-score grows with the scale of the span distances, which training changes. A control "
              "with that scale but without the grammar's structure: the same model and sentences with their "
              "words in a seeded random order (threshold 0). A ratio near 1 means the model is as \"tree-like\" "
              "on word salad as on grammatical sentences.", "",
              md_table(["layers", "step", "seeds", "t (sentences)", "t (shuffled)",
                        "difference, mean of seeds [95 % CI]", "ratio per seed"], shuf_rows), "",
              "(The interval pairs each sentence with its own shuffled version, bootstrap over sentences as "
              "above.)", ""]
    # --- correlation with generalization
    corr_rows = []
    for r in results:
        fin = r["final"]
        sc = _scores(r, r["steps"][-1]) if r["steps"][-1] else None
        corr_rows.append([r["name"], f"{fin['step']:,}", f"{fin['t_score']:.3f}", f"{100 * fin['f1']:.1f}",
                          f"{r['steps'][-1]:,}", "" if sc is None else f"{sc.t_score:.3f}",
                          "" if sc is None else f"{100 * sc.f1:.1f}", f"{fin.get('id_acc', float('nan')):.3f}",
                          f"{fin['gen_acc']:.3f}",
                          f"{fin['test_gen_acc']:.3f}" if "test_gen_acc" in fin else "(not yet)"])
    lines += ["### Tree-structuredness and generalization", "",
              f"Per run, at its last logged step: the logged t-score and F1 ({results[0]['n_logged']} sentences), "
              f"the same at its last kept checkpoint on {n} sentences, in-distribution and generalization accuracy "
              "on the 200 evaluation rows, and held-out generalization accuracy (`test_gen_acc`: first word of "
              f"the question on {results[0]['final'].get('test_gen_n', 1000)} held-out gen-split rows, scored once, "
              "at the final step).", "",
              md_table(["run", "last logged step", "t (log)", "F1 (log, %)", "checkpoint", f"t ({n})",
                        f"F1 ({n}, %)", "id acc", "gen acc", "test_gen_acc"], corr_rows), ""]
    status = {"complete": complete, "finished": [r["name"] for r in finished],
              "reached": {r["name"]: r["final"]["step"] for r in results}, "n": len(finished),
              "depth_gap": {f"{d}@{s}": g for (d, s), g in depth_gap.items()}}
    if len(finished) >= 4:
        xs_t = [r["final"]["t_score"] for r in finished]
        xs_f = [r["final"]["f1"] for r in finished]
        ys = [r["final"]["test_gen_acc"] for r in finished]
        rho_t, r_t, p_t = spearman_perm(xs_t, ys)
        rho_f, r_f, p_f = spearman_perm(xs_f, ys)
        status.update(rho_t=rho_t, rho_f=rho_f, p_t=p_t, p_f=p_f)
        lines += [f"Across the n = {len(finished)} finished runs: final t-score vs test_gen_acc: Spearman ρ = "
                  f"{rho_t:+.2f} (exact permutation p = {p_t:.2f}), Pearson r = {r_t:+.2f}; final F1 vs "
                  f"test_gen_acc: ρ = {rho_f:+.2f} (p = {p_f:.2f}), r = {r_f:+.2f}. Runs of every depth are pooled "
                  "(the table shows each run).", "",
                  "![scatter](figures/trees-grok-generalization.png)", ""]
        plot_scatter(finished, "test_gen_acc", figs / "trees-grok-generalization.png")
    else:
        lines += [f"Only {len(finished)} run(s) had reached the final step, where the held-out rows are scored: "
                  "too few for a correlation across runs (it needs at least 4); not computed.", ""]
    # --- consistency of the recomputation with the log
    diffs = []
    for r in results:
        logged = {row["step"]: row for row in r["rows"]}
        for s in r["steps"]:
            if s in logged:
                got = r["per_step"][s]["logged"]
                diffs += [abs(got["t_score"] - logged[s]["t_score"]), abs(got["f1"] - logged[s]["f1"])]
    lines += ["### Check", "",
              f"Recomputed from the kept checkpoints, the logged sentences' t-score and F1 equal the logged values "
              f"at every step that has both ({len(diffs) // 2} run-steps; largest difference {max(diffs, default=0):.1e})."
              if diffs else "No kept checkpoint coincides with a logged step; the recomputation was not checked.", ""]
    return lines, status


def plot_training(results: list[dict], path: Path, right_f1: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmscope.report.plots import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = {}
    for k, d in enumerate(sorted({r["layers"] for r in results})):
        colors[d] = f"C{k}"
    for key, ax, label in (("t_score", axes[0], "t-score (logged sentences)"), ("f1", axes[1], "parsing F1"),
                           ("gen_acc", axes[2], "gen accuracy (200 eval rows)")):
        for d, c in colors.items():
            runs = [r for r in results if r["layers"] == d]
            curves = []
            for r in runs:
                x = [row["step"] for row in r["rows"] if row.get(key) is not None]
                y = [row[key] for row in r["rows"] if row.get(key) is not None]
                if key != "gen_acc":
                    x, y = [0, *x], [r["per_step"][0]["logged"][key], *y]
                ax.plot(x, y, color=c, alpha=0.3, lw=0.8)
                curves.append(dict(zip(x, y)))
            common = sorted(set.intersection(*[set(cv) for cv in curves]))
            ax.plot(common, [np.mean([cv[s] for cv in curves]) for s in common], color=c, lw=2,
                    label=f"{d} layers (mean of {len(runs)})")
        ax.set_xlabel("step")
        ax.set_title(label)
    if right_f1 is not None:
        axes[1].axhline(right_f1, color="grey", ls="--", lw=1, label="right-branching trees")
        axes[1].legend(fontsize=8)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_scatter(results: list[dict], gen_key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmscope.report.plots import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.4))
    for k, d in enumerate(sorted({r["layers"] for r in results})):
        runs = [r for r in results if r["layers"] == d]
        for ax, key in zip(axes, ("t_score", "f1")):
            ax.scatter([r["final"][key] for r in runs], [r["final"][gen_key] for r in runs], color=f"C{k}",
                       label=f"{d} layers")
    axes[0].set_xlabel("final t-score")
    axes[1].set_xlabel("final parsing F1")
    axes[0].set_ylabel(gen_key)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def setup_table(results: list[dict], args, runs_root: Path) -> list[str]:
    info = json.loads((runs_root / results[0]["name"] / "run.json").read_text())
    m, t, ev = info["model"], info["train"], info["meta"]["eval"]
    depths = "/".join(str(d) for d in sorted({r["layers"] for r in results}))
    seeds = len({r["seed"] for r in results})
    rows = [
        ["task, data", f"question formation from our weighted grammar after McCoy et al. (`lmscope data`, its "
         f"own rule weights and vocabulary): {info['data']['n_texts']:,} training rows (declaratives and questions)",
         "question formation, McCoy et al.'s data files (`question.train`)",
         "data distribution: **not scale** (a re-implemented grammar); data size: **scale** (the reference "
         "file is not in our copy, so its size is not compared)"],
        ["model", f"causal LM, post-LN, sinusoidal positions, d_model {m['d_model']}, {m['n_heads']} heads, "
         f"MLP {m['d_ff']}, {depths} layers, dropout {m['dropout']}",
         "causal LM (`create_lm`), d_model 512, 4 heads, 2–10 layers",
         "width: **scale** (CPU budget)"],
        ["training", f"{min(r['trained_steps'] for r in results):,} steps"
         + (" (read there: runs continued past it are on the grokking page)" if args.at_step else "")
         + f", batch {t['batch_size']}, AdamW lr {t['lr']:g}, warmup "
         f"{t['warmup']:,}, weight decay {t['weight_decay']:g}",
         "up to 300k steps (checkpoints every 3k), batch 8, AdamW lr 1e-4, warmup 10k, weight decay 0",
         "training steps: **scale** (CPU budget)"],
        ["seeds", f"{seeds} per depth", "not fixed by the reference code (one `--seed`)", "—"],
        ["sentences projected", f"training split, declaratives of question rows without the final period; "
         f"{ev['tree_sample']} logged per evaluation, {args.grok_n} at kept checkpoints",
         "training split, the same declaratives (period removed), 10,000 sampled per checkpoint",
         "sample size only (it sets the width of the intervals, which are given)"],
        ["gold trees", "our grammar's derivation trees (binary)", "the reference's `parse_question` bracketing",
         "**not scale**: another bracketing convention, so F1 values are not comparable with the paper's"],
        ["distance, score", "cosine; t-score = Σ over nodes of the chosen split's score minus a uniformly "
         "random split's (one draw per node, seeded), mean over sentences; F1 pooled over sentences",
         "cosine, `normalize=True` (the same one random split per node), mean over sentences; parseval F1",
         "same"],
        ["layer, threshold", "last layer; threshold 0 along training, 0 .. depth/2 at kept checkpoints",
         "last layer (`layer_id=-1`); threshold 0 (structural grokking), 0 .. depth/2 (tree-projections "
         "paper)", "same"],
        ["controls", "the run's own initial model (step 0); the same sentences with shuffled words",
         "training curves from the first checkpoint (3k)", "ours adds them (no effect on the scores)"],
        ["generalization", f"first word of the question, held-out gen rows ({ev.get('n_test', 0):,}), at the "
         "final step", "first word of the question on `question.test`", "same measure; **not scale**: our gen split "
         "keeps only rows whose two auxiliaries differ"],
    ]
    return ["## Setup against the papers", "",
            "*Characterizing Intrinsic Compositionality in Transformers with Tree Projections* (Murty et al., "
            "ICLR 2023; code `MurtyShikhar/TreeProjections`) reports that transformers trained on compositional "
            "data become more tree-like as they train; *Grokking of Hierarchical Structure in Vanilla "
            "Transformers* (ACL 2023; `MurtyShikhar/structural-grokking`) applies it to language models trained "
            "on question formation and relates tree-structuredness to generalization. Facts of the reference "
            "code as read there (`transformer_lm_sci.py`, `training_utils.py`, `run_tree_projections.py`):", "",
            md_table(["", "ours", "paper (reference code)", "why different"], rows), ""]


# ------------------------------------------------------------------------------------------------
# Bundled models
# ------------------------------------------------------------------------------------------------
def sentences(n: int, seed: int):
    """``n`` distinct declaratives with gold trees, half from each grammar."""
    words, trees = [], []
    for suite in ("question-formation", "tense-inflection"):
        w, t = gold_sentences(suite, n // 2 + n % 2 * (suite == "question-formation"), seed=seed, pool=4 * n)
        words += w
        trees += t
    return words, trees


def bundled_section(args, figs: Path) -> list[str]:
    from lmscope.report.html import Report
    from lmscope.report.plots import plot_sci_chart, plot_tree
    from lmscope.report.sections import tree_layers_section
    from lmscope.trees import tree_projection

    words, golds = sentences(args.n, args.seed)
    lengths = [len(w) for w in words]
    lines = [
        "## Bundled pretrained models, per layer", "",
        "Not the paper's setting (the models were not trained on the grammar): the projections of "
        "SmolLM2-135M and MiniLM-L6 on grammar sentences they see for the first time.", "",
        f"Sentences: {len(words)} declaratives from the question-formation and tense-inflection grammars "
        f"(`lmscope data make`, validation split, seed {args.seed}), {min(lengths)}–{max(lengths)} words "
        f"(mean {sum(lengths) / len(lengths):.1f}), each with its gold binary tree. Span mask from block 0 "
        "(every layer), cosine distance, vectors read after the given block (layer L = output of block L). "
        "One masked pass per span start for the causal SmolLM2, one per span for the MiniLM encoder; the "
        "same passes serve every layer. *t shuffled*: the t-score of the same sentences with their words in a "
        f"seeded random order (seed {args.seed}), a per-layer control for the scale of the span distances. "
        "The CLI equivalent for one layer:", "",
        "```",
        "lmscope data make question-formation --out qf --n-train 0 --n-val 300 --n-gen 0",
        "lmscope trees smollm2-135m --data qf/val.jsonl --limit 150 --out runs/trees-smollm2",
        "```", ""]
    for model, layers in MODELS.items():
        t0 = time.time()
        print(f"== {model}: {len(words)} sentences, layers {layers}", flush=True)
        sweep = tree_projection(model, words, gold_trees=golds, layer=layers, seed=args.seed)
        secs = time.time() - t0
        print("\n".join(sweep.summary_lines()), f"({secs:.0f} s)", flush=True)
        shuffled = tree_projection(model, shuffle_words(words, args.seed), layer=layers, seed=args.seed)
        t_shuf = {int(r["layer"]): float(r["t_score"]) for _, r in shuffled.table().iterrows()}
        with atomic_dir(Path(args.runs) / model) as tmp:
            rep = Report(tmp, f"Tree projections: {model}")
            tree_layers_section(rep, sweep)
            rep.write()
        last = sweep.results[layers[-1]]
        i = max(range(len(words)), key=lambda k: (len(words[k]) >= 9, -abs(len(words[k]) - 10)))
        sent = last.sentences[i]
        plot_sci_chart(sent.chart, sent.words, figs / f"trees-{model}-chart.png",
                       title=f"{model}, layer {last.layer}: span similarity")
        plot_tree(sent.tree, figs / f"trees-{model}-tree.png", gold=sent.gold,
                  title=f"{model}, layer {last.layer}: induced tree")
        t = sweep.table()
        base_cols = [c for c in t.columns if c.startswith("f1_")]
        lines += [f"### {model}", "",
                  md_table(["layer", "t-score", "t shuffled", "t / t shuffled", "F1",
                            *[c.removeprefix("f1_") + " F1" for c in base_cols]],
                           [[int(r["layer"]), f"{r['t_score']:.4f}", f"{t_shuf[int(r['layer'])]:.4f}",
                             f"{r['t_score'] / t_shuf[int(r['layer'])]:.2f}", f"{100 * r['f1']:.1f}",
                             *[f"{100 * r[c]:.1f}" for c in base_cols]] for _, r in t.iterrows()]),
                  "",
                  f"({secs:.0f} s on this machine.) Chart and induced tree of one sentence at the last layer "
                  "(gold brackets in green where matched):", "",
                  f"![chart](figures/trees-{model}-chart.png) ![tree](figures/trees-{model}-tree.png)", ""]
    return lines


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------
def _block(name: str, body: list[str] | str) -> str:
    text = body if isinstance(body, str) else "\n".join(body)
    return f"<!-- begin {name} -->\n{text.strip()}\n<!-- end {name} -->"


def _old_block(old: str, name: str) -> str | None:
    m = re.search(rf"<!-- begin {re.escape(name)} -->\n(.*?)\n<!-- end {re.escape(name)} -->", old, re.S)
    return m.group(1) if m else None


def regenerate_command(args) -> str:
    cmd = "PYTHONPATH=src .venv/bin/python experiments/tree_projections.py"
    if args.grok_runs:
        cmd += f" --grok-runs {args.grok_runs}"
    if args.grok_n != 200:
        cmd += f" --grok-n {args.grok_n}"
    if args.at_step:
        cmd += f" --at-step {args.at_step}"
    if args.n != 300:
        cmd += f" --n {args.n}"
    return cmd


def write_page(doc: Path, args, grok_lines, setup_lines, status, bundled_lines) -> None:
    old = doc.read_text() if doc.is_file() else ""

    def kept(name: str, new: list[str] | None, fallback: str) -> str:
        if new is not None:
            return _block(name, new)
        got = _old_block(old, name)
        return _block(name, got if got is not None else fallback)

    def reading(name: str) -> str:
        got = _old_block(old, name)
        return _block(name, got if got is not None and PLACEHOLDER not in got else PLACEHOLDER)

    intro = [
        "# Tree projections: grammar-trained transformers and bundled models", "",
        "Tree projections (Murty, Sharma, Andreas & Manning, 2023) measure how tree-like a transformer's "
        "computation is: for every span, the distance between the span's vector in context and its vector "
        "when attention cannot see outside it, then the tree that best fits those distances (the tree "
        "projection), its t-score, and its parsing F1 against gold trees.", "",
        "Regenerate this page (the grammar-trained runs first, then the page; the bundled-model section is "
        "recomputed unless `--skip-bundled` is given):", "",
        "```",
        "PYTHONPATH=src .venv/bin/python experiments/structural_grokking.py --layers 2,4,6 --seeds 0,1,2 "
        "--steps 50000 --long-seeds 0 --long-layers 2,6 --long-steps 100000   # the runs (see that page)",
        regenerate_command(args),
        "```", ""]
    if status and not status["complete"]:
        reached = ", ".join(f"{k} {v:,}" for k, v in status["reached"].items())
        intro += [f"**Partial:** when this page was written the sweep was still training; steps reached of "
                  f"{args.expected_steps:,}: {reached} (runs not listed had not started). The numbers below are at "
                  "the steps reached. To complete them, let the sweep finish (the first command resumes it) and "
                  "rerun the second command (add `--skip-bundled` to keep the bundled section as it is).", ""]
    text = "\n".join([
        *intro,
        kept("setup", setup_lines, "(setup table not generated yet: run with --grok-runs)"), "",
        "## Models trained on question formation", "",
        kept("grok", grok_lines, "(not generated yet: run with --grok-runs)"), "",
        "### Reading", "",
        reading("grok-reading"), "",
        kept("bundled", bundled_lines, "(not generated yet: run without --skip-bundled)"), "",
        "### Reading (bundled models)", "",
        reading("bundled-reading"), ""])
    doc.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grok-runs", default=None, help="folder of question-formation grokking runs (e.g. runs/grok)")
    ap.add_argument("--grok-n", type=int, default=200, help="training sentences projected per checkpoint (default 200)")
    ap.add_argument("--sweep-steps", default="0,5000,25000,50000",
                    help="checkpoints of the threshold sweep (the last kept one is added)")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap replicates (default 2000)")
    ap.add_argument("--min-age", type=float, default=60.0,
                    help="skip checkpoints written less than this many seconds ago (a run still training)")
    ap.add_argument("--expected-steps", type=int, default=50000, help="the sweep's steps (for the partial note)")
    ap.add_argument("--at-step", type=int, default=None,
                    help="read every run up to this step (runs continued past it are compared where the others end)")
    ap.add_argument("--skip-bundled", action="store_true", help="keep the page's bundled-model section")
    ap.add_argument("--n", type=int, default=300, help="sentences for the bundled models (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bundled sentences and of the bootstrap")
    ap.add_argument("--runs", default="runs/trees")
    ap.add_argument("--doc", default="docs/results/tree-projections.md")
    args = ap.parse_args(argv)
    try:
        args.sweep_steps = [int(s) for s in args.sweep_steps.split(",") if s.strip()]
    except ValueError:
        ap.error("--sweep-steps takes comma-separated integers")
    doc = Path(args.doc)
    figs = doc.parent / FIGS
    figs.mkdir(parents=True, exist_ok=True)
    grok_lines = setup_lines = status = None
    try:
        if args.grok_runs:
            root = Path(args.grok_runs)
            results, cache = [], {}
            for run_dir in find_runs(root):
                t0 = time.time()
                results.append(analyse_run(run_dir, args, cache))
                print(f"{run_dir.name}: steps {results[-1]['steps']} ({time.time() - t0:.0f} s)", flush=True)
            grok_lines, status = grok_section(results, args, figs)
            setup_lines = setup_table(results, args, root)
            write_json(Path(args.runs) / "grok" / "summary.json", status)
        bundled_lines = None if args.skip_bundled else bundled_section(args, figs)
    except LmscopeError as e:
        print(f"lmscope: error: {e}", file=sys.stderr)
        return 2
    write_page(doc, args, grok_lines, setup_lines, status, bundled_lines)
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
