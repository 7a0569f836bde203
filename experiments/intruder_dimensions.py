"""Reproduce the intruder-dimensions finding on a bundled real model, at CPU scale.

Fine-tunes the model with LoRA r=1, LoRA r=8, rsLoRA at a high rank and full fine-tuning on one
task, for several seeds, with the paper's reference settings by default (full fine-tuning trains the
weight matrices and the head only, no gradient clipping; see ``--train-set`` and ``--grad-clip``).
Reports per method: task accuracy, intruder counts (k=10, eps=0.5) at every kept checkpoint and at
the end (with an eps sweep), forgetting on held-out general text, and the same after scaling the
intruders by lambda beside a control that scales as many random non-intruder top-k directions of
the same matrices by the same lambda. Means come with 95% t-intervals over the seeds.

Writes docs/results/intruder-dimensions.md (or --doc) and its figures, keeping the page's
hand-written reading and setup comparison. Runs are kept in --runs and reused, so an interrupted
run continues where it stopped.

    .venv/bin/python experiments/intruder_dimensions.py                  # the page's settings
    .venv/bin/python experiments/intruder_dimensions.py --model smollm2-135m --task recipes-lm \\
        --doc docs/results/intruder-dimensions-smollm2.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope.data.tasks import TASKS, make_task, split_rows, task_kind  # noqa: E402
from lmscope.models import open_model  # noqa: E402
from lmscope.models.checkpoint import WeightEditor  # noqa: E402
from lmscope.spectral import SVDCache, find_intruders  # noqa: E402
from lmscope.spectral.intruders import control_edits, intruders_over_training, mitigation_edits  # noqa: E402
from lmscope.train import FinetuneConfig, finetune  # noqa: E402
from lmscope.train.evaluate import classification_accuracy, forgetting_loss, lm_loss  # noqa: E402

CONFIGS = {
    "lora-r1": dict(method="lora", rank=1),
    "lora-r8": dict(method="lora", rank=8),
    "rslora-r64": dict(method="rslora", rank=64),
    "full": dict(method="full"),
}
EPS_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


# ------------------------------------------------------------------------------------------ tasks
def topic_pair_rows(n: int, seed: int) -> list[dict]:
    """Two snippets of the bundled ``topic`` task joined by " | "; the label says whether their topics
    are the same (half the rows) or different. A sentence-pair task: the model has to compare the two
    topics, which a single keyword does not give away."""
    by_topic: dict[str, list[str]] = {}
    for r in make_task("topic", 4 * n, seed=seed):
        by_topic.setdefault(r["label"], []).append(r["text"])
    topics = sorted(by_topic)
    rng = random.Random(f"topic-pair:{seed}")
    rows = []
    for i in range(n):
        a = topics[(i // 2) % len(topics)]
        b = a if i % 2 == 0 else rng.choice([t for t in topics if t != a])
        rows.append({"text": f"{rng.choice(by_topic[a])} | {rng.choice(by_topic[b])}",
                     "label": "same" if a == b else "different"})
    rng.shuffle(rows)
    return rows


def topic_words_rows(n: int, seed: int, k: int = 2) -> list[dict]:
    """The bundled ``topic`` task seen through ``k`` words drawn at random from each snippet (in the
    order drawn): "Saturday winner" is sports, "Kestrel on" could be anything. Many word pairs occur
    under several topics, so no model can be always right: a lookup table over 32,000 one-word rows
    scores 0.76 and a naive Bayes classifier on two words 0.91 on fresh rows. The task the fine-tuned
    model cannot saturate, as the paper's natural tasks do not."""
    rng = random.Random(f"topic-words:{seed}")
    rows = []
    for r in make_task("topic", n, seed=seed):
        words = re.findall(r"[A-Za-z']+|\d+", r["text"])
        rows.append({"text": " ".join(rng.sample(words, min(k, len(words)))), "label": r["label"]})
    return rows


EXTRA_TASKS = {"topic-pair": topic_pair_rows, "topic-words": topic_words_rows}


def make_rows(task: str, n: int, seed: int) -> tuple[list[dict], str]:
    if task in EXTRA_TASKS:
        return EXTRA_TASKS[task](n, seed), "classification"
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}; choose one of {', '.join([*TASKS, *EXTRA_TASKS])}")
    return make_task(task, n, seed=seed), task_kind(task)


# ------------------------------------------------------------------------------------ statistics
def mean_ci(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for one value)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), T975.get(len(v) - 1, 1.96) * float(v.std(ddof=1)) / math.sqrt(len(v))


def fmt_ci(values, digits: int = 3) -> str:
    m, h = mean_ci(values)
    return f"{m:.{digits}f} ± {h:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def per_seed(values, digits: int = 0) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values)


# --------------------------------------------------------------------------------------- one run
def task_result(model, tok, test_rows, kind, labels, max_length):
    if kind == "classification":
        return classification_accuracy(model, tok, test_rows, {lab: i for i, lab in enumerate(labels)}, max_length)
    return lm_loss(model, tok, [r["text"] for r in test_rows], max_length)


def add_checkpoint_tasks(result: dict, run_dir: Path, test_rows, kind, labels, max_length) -> dict:
    """The task result of every counted checkpoint, beside its intruder count (the last one is the end's)."""
    from lmscope.train.finetune import checkpoint_steps

    folders = dict(checkpoint_steps(run_dir))
    for point in result["over_training"]:
        if "task" not in point:
            if point["step"] == result["steps"]:
                point["task"] = result["task_after"]
            else:
                src = open_model(folders[point["step"]])
                point["task"] = task_result(src.load_model(), src.load_tokenizer(), test_rows, kind, labels,
                                            max_length)
    return result


def run_one(name: str, seed: int, args, rows, kind, labels, base, cache, runs: Path) -> dict:
    res_file = runs / f"{name}-s{seed}.json"
    _, test_rows = split_rows(rows, 0.2, seed)
    if res_file.is_file():
        print(f"[{name} s{seed}] reusing {res_file}", file=sys.stderr)
        result = json.loads(res_file.read_text())
        if any("task" not in p for p in result["over_training"]):
            add_checkpoint_tasks(result, runs / f"{name}-s{seed}", test_rows, kind, labels, args.max_length)
            res_file.write_text(json.dumps(result, indent=2) + "\n")
        return result
    base_name, _, lr = name.partition("@")
    spec = CONFIGS[base_name]
    extra = dict(train_set=args.train_set) if spec["method"] == "full" else {}
    cfg = FinetuneConfig(**spec, **extra, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                         max_length=args.max_length, seed=seed, lr=float(lr) if lr else None,
                         grad_clip=args.grad_clip, keep_checkpoints=True, ckpt_every=args.ckpt_every,
                         general_texts=args.general_texts)
    run_dir = runs / f"{name}-s{seed}"
    t0 = time.time()
    if not (run_dir / "lmscope.json").is_file():
        print(f"[{name} s{seed}] fine-tuning ({cfg.method}, r={cfg.rank}, lr={cfg.learning_rate})", file=sys.stderr)
        metrics = finetune(base, rows, run_dir, cfg).metrics
    else:
        metrics = json.loads((run_dir / "lmscope.json").read_text())["metrics"]
    print(f"[{name} s{seed}] intruders over training", file=sys.stderr)
    over = intruders_over_training(base, run_dir, k=args.k, eps=args.eps, cache=cache, quiet=True)
    intr = find_intruders(base, run_dir, k=args.k, eps=args.eps, cache=cache, quiet=True)
    max_cos = intr.max_cos_values()
    sig = intr.signature_matrix()
    np.save(runs / f"{name}-s{seed}-similarity-{sig}.npy", intr.similarity[sig])

    tuned = open_model(run_dir)
    model, tok = tuned.load_model(), tuned.load_tokenizer()
    editor = WeightEditor(model, tuned)
    out = {}
    for what, (edits, ranks) in {
        "mitigated": (mitigation_edits(intr, tuned, args.scale),
                      {r.key: list(r.intruder_ranks) for r in intr.table.itertuples() if r.n_intruders}),
        "control": control_edits(intr, tuned, args.scale, seed=seed),
    }.items():
        if edits:
            previous = editor.set(edits)
            out[f"{what}_task"] = task_result(model, tok, test_rows, kind, labels, args.max_length)
            out[f"{what}_general"] = forgetting_loss(model, tok, args.general_texts)["value"]
            editor.undo(previous)
        else:  # nothing to scale: the model is the tuned one
            out[f"{what}_task"] = list(metrics["task_after"].values())[0]
            out[f"{what}_general"] = metrics["general_after"]["value"]
        out[f"{what}_directions"] = int(sum(len(v) for v in ranks.values()))
    result = {
        "name": name, "seed": seed, "method": cfg.method, "rank": cfg.rank if cfg.method != "full" else None,
        "lr": cfg.learning_rate, "steps": metrics["steps"], "trainable_parameters": metrics["trainable_parameters"],
        "train_seconds": metrics["train_seconds"], "train_set": cfg.train_set if cfg.method == "full" else "adapters",
        "grad_clip": cfg.grad_clip,
        "task_after": list(metrics["task_after"].values())[0], "task_metric": list(metrics["task_after"])[0],
        "general_metric": metrics["general_before"]["metric"],
        "general_before": metrics["general_before"]["value"], "general_after": metrics["general_after"]["value"],
        "intruders": intr.total, "matrices_with_intruders": int((intr.table["n_intruders"] > 0).sum()),
        "matrices": len(intr.table), "by_role": intr.summary()["by_role"],
        "eps_sweep": {str(e): int((max_cos < e).sum()) for e in EPS_SWEEP},
        "over_training": [{"step": int(r.step), "n_intruders": int(r.n_intruders),
                           "min_max_cos": float(r.min_max_cos)} for r in over.itertuples()],
        "signature_matrix": sig, "scale": args.scale, **out, "seconds": round(time.time() - t0, 1),
    }
    add_checkpoint_tasks(result, run_dir, test_rows, kind, labels, args.max_length)
    res_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


# ------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--task", default="topic-pair", help=f"a bundled task or one of {', '.join(EXTRA_TASKS)}")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the generated task rows (fixed over runs)")
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--configs", default="lora-r1,lora-r8,full",
                    help="comma-separated; NAME@LR overrides the learning rate, e.g. lora-r1@3e-3")
    ap.add_argument("--seeds", "--seed", default="0,1,2", help="training seeds: head initialization, data order, split")
    ap.add_argument("--train-set", default="weights", choices=["weights", "all"],
                    help="what full fine-tuning trains (default: the reference's, weights and head)")
    ap.add_argument("--grad-clip", type=float, default=0.0, help="gradient-norm clipping, 0 = off (the reference's)")
    ap.add_argument("--ckpt-every", type=int, default=100, help="steps between the checkpoints counted")
    ap.add_argument("--general-texts", type=int, help="general-text passages for forgetting (default all)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--eps", type=float, default=0.5)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--runs", default="runs/intruders")
    ap.add_argument("--doc", default="docs/results/intruder-dimensions.md")
    ap.add_argument("--only-runs", action="store_true", help="train and measure, do not write the page")
    ap.add_argument("--finished-only", action="store_true",
                    help="write the page from the runs already measured, train nothing (the page names what is missing)")
    args = ap.parse_args(argv)

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    for name in names:
        if name.partition("@")[0] not in CONFIGS:
            ap.error(f"unknown config {name!r}; known: {', '.join(CONFIGS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    clip = "noclip" if args.grad_clip == 0 else f"clip{args.grad_clip:g}"
    runs = Path(args.runs) / f"{args.model}-{args.task}-n{args.n}-d{args.data_seed}-{args.train_set}-{clip}"
    runs.mkdir(parents=True, exist_ok=True)
    rows, kind = make_rows(args.task, args.n, args.data_seed)
    labels = sorted({r["label"] for r in rows}) if kind == "classification" else []
    base = open_model(args.model)
    cache = SVDCache()

    results: dict[str, list[dict]] = {}
    missing = []
    for name in names:
        for seed in seeds:
            if args.finished_only and not (runs / f"{name}-s{seed}.json").is_file():
                missing.append(f"{name} seed {seed}")
                continue
            results.setdefault(name, []).append(run_one(name, seed, args, rows, kind, labels, base, cache, runs))
    if not args.only_runs and results:
        write_doc(results, [n for n in names if n in results], seeds, args, runs, kind, missing, all_names=names)
        print(f"wrote {args.doc}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ page
def write_doc(results, names, seeds, args, runs, kind, missing=(), all_names=None):
    doc = Path(args.doc)
    figdir = doc.parent / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    stem = doc.stem

    # figure 1: intruders over training (mean over seeds, each seed faint)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, name in enumerate(names):
        color = f"C{i}"
        curves = [([0] + [p["step"] for p in r["over_training"]], [0] + [p["n_intruders"] for p in r["over_training"]])
                  for r in results[name]]
        for x, y in curves:
            ax.plot(x, y, color=color, alpha=0.3, lw=0.8)
        if len({tuple(x) for x, _ in curves}) == 1:
            ax.plot(curves[0][0], np.mean([y for _, y in curves], axis=0), color=color, marker="o", ms=3, label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"intruders (top-{args.k}, eps={args.eps})")
    ax.legend(fontsize=8)
    n_seeds = sorted({len(results[name]) for name in names})
    ax.set_title(f"{args.model} on {args.task}: intruders over training "
                 f"({'/'.join(map(str, n_seeds))} seed{'s' if n_seeds[-1] > 1 else ''} per method)", fontsize=10)
    fig.savefig(figdir / f"{stem}-training.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    # figure 2: the eps sweep at the end
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in names:
        ys = np.mean([[r["eps_sweep"][str(e)] for e in EPS_SWEEP] for r in results[name]], axis=0)
        ax.plot(EPS_SWEEP, ys, marker="o", label=name)
    ax.set_xlabel("eps (similarity threshold)")
    ax.set_ylabel(f"intruders in the model (top-{args.k})")
    ax.set_yscale("symlog")
    ax.legend(fontsize=8)
    ax.set_title(f"{args.model} on {args.task}: intruders vs eps at the end (mean over seeds)", fontsize=10)
    fig.savefig(figdir / f"{stem}-eps.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    from lmscope.report.plots import plot_similarity

    sims = []
    for name in names:
        r = max(results[name], key=lambda r: r["intruders"])
        f = runs / f"{name}-s{r['seed']}-similarity-{r['signature_matrix']}.npy"
        if f.is_file():
            png = figdir / f"{stem}-similarity-{name}.png"
            plot_similarity(np.load(f), r["signature_matrix"], args.eps, png,
                            title=f"{name} seed {r['seed']}, matrix {r['signature_matrix']}: |cos(u_tuned, u_base)|")
            sims.append((name, png))

    first = results[names[0]][0]
    gm = first["general_metric"]
    task_label = "task accuracy" if kind == "classification" else "task LM loss"
    cmd = (f".venv/bin/python experiments/intruder_dimensions.py --model {args.model} --task {args.task} --n {args.n} "
           f"--data-seed {args.data_seed} --batch-size {args.batch_size} --max-length {args.max_length}"
           + (f" --max-steps {args.max_steps}" if args.max_steps else f" --epochs {args.epochs:g}")
           + f" --seeds {','.join(map(str, seeds))} --train-set {args.train_set} --grad-clip {args.grad_clip:g}"
           + f" --ckpt-every {args.ckpt_every}"
           + (f" --general-texts {args.general_texts}" if args.general_texts else "")
           + f" --configs {','.join(all_names or names)} --doc {doc}")
    lines = [
        f"# Intruder dimensions: {args.model} fine-tuned on `{args.task}`",
        "",
        "Regenerate (runs are cached under `runs/`, delete them to retrain):",
        "",
        f"    {cmd}",
        "",
        (f"**Not finished:** {', '.join(missing)}: the command above trains and adds them (the page was written "
         "with `--finished-only` from the runs that were done). Each row says which seeds it has.\n\n"
         if missing else "")
        + f"Every number below comes from this command: training seeds {', '.join(map(str, seeds))}"
        + (" where finished (" if missing else " (")
        + "the seed "
        "sets the head's initialization, the data order and the 80/20 train/test split; the task rows are fixed by "
        f"`--data-seed {args.data_seed}`). Cells give the mean ± the half-width of its 95% t-interval over the seeds, "
        "and where useful the per-seed values.",
        "",
        "SETUP_PLACEHOLDER",
        "",
        "## Results at the end of training",
        "",
        f"Forgetting is `{gm}` on the bundled held-out general text (lower is better; before fine-tuning it is "
        f"{first['general_before']:.4f}). Mitigation scales every intruder's singular value by λ = {args.scale}; the "
        "control scales as many randomly drawn (seeded) non-intruder directions among the same matrices' top-"
        f"{args.k} by the same λ.",
        "",
    ]
    header = ["method", "seeds", "lr", "steps", "trainable params", task_label, "intruders (per seed)",
              f"{gm} after", f"mitigated: {task_label}", f"mitigated: {gm}", f"control: {task_label}",
              f"control: {gm}"]
    body = []
    for name in names:
        rs = results[name]
        body.append([name, ",".join(str(r["seed"]) for r in rs), f"{rs[0]['lr']:g}", rs[0]["steps"], f"{rs[0]['trainable_parameters']:,}",
                     fmt_ci([r["task_after"] for r in rs]),
                     f"{fmt_ci([r['intruders'] for r in rs], 1)} ({per_seed([r['intruders'] for r in rs])})",
                     fmt_ci([r["general_after"] for r in rs]),
                     fmt_ci([r["mitigated_task"] for r in rs]), fmt_ci([r["mitigated_general"] for r in rs]),
                     fmt_ci([r["control_task"] for r in rs]), fmt_ci([r["control_general"] for r in rs])])
    lines += [md_table(header, body), ""]
    # mitigation against control, paired by seed, only where there was something to scale
    lines += ["Mitigation against its control, per seed (runs with at least one intruder; Δ = after the edit minus "
              "before it, so a negative Δ forgetting means less forgetting):", ""]
    body = []
    for name in names:
        for r in results[name]:
            if r["intruders"]:
                body.append([name, r["seed"], r["intruders"], r["control_directions"],
                             f"{r['mitigated_general'] - r['general_after']:+.4f}",
                             f"{r['control_general'] - r['general_after']:+.4f}",
                             f"{r['mitigated_task'] - r['task_after']:+.4f}",
                             f"{r['control_task'] - r['task_after']:+.4f}"])
    lines += [md_table(["method", "seed", "intruders scaled", "control directions scaled", f"Δ {gm} (mitigation)",
                        f"Δ {gm} (control)", f"Δ {task_label} (mitigation)", f"Δ {task_label} (control)"], body)
              if body else "(no run has an intruder at this eps: nothing to mitigate)", ""]

    lines += ["## Intruders over training", "",
              f"Intruder count (top-{args.k}, eps = {args.eps}, all {first['matrices']} matrices) at every "
              f"{args.ckpt_every}th step; mean over the seeds (per-seed values in brackets); after the semicolon the mean "
              f"{'test accuracy' if kind == 'classification' else 'task LM loss'} of the same checkpoints.", ""]
    steps = [p["step"] for p in first["over_training"]]
    body = []
    for name in names:
        rs = results[name]
        if any([p["step"] for p in r["over_training"]] != steps for r in rs):
            continue
        cells = []
        for i in range(len(steps)):
            vals = [r["over_training"][i]["n_intruders"] for r in rs]
            task = [r["over_training"][i]["task"] for r in rs if "task" in r["over_training"][i]]
            cells.append(f"{np.mean(vals):.1f} ({per_seed(vals)})" + (f"; {np.mean(task):.3f}" if task else ""))
        body.append([name, *cells])
    lines += [md_table(["method", *[f"step {s}" for s in steps]], body), "",
              f"![intruders over training](figures/{stem}-training.png)", ""]

    lines += ["## Threshold and roles at the end", "", "Intruder count against eps (mean over seeds):", "",
              md_table(["method", *[f"eps={e}" for e in EPS_SWEEP]],
                       [[name, *[f"{np.mean([r['eps_sweep'][str(e)] for r in results[name]]):.1f}" for e in EPS_SWEEP]]
                        for name in names]), "",
              "Intruders per role (sum over seeds):", "",
              md_table(["method", *first["by_role"]],
                       [[name, *[sum(r["by_role"][role] for r in results[name]) for role in first["by_role"]]]
                        for name in names]), "",
              f"![intruders vs eps](figures/{stem}-eps.png)", ""]
    for name, png in sims:
        lines += [f"![{name} similarity](figures/{png.name})", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    text = "\n".join(lines)
    # the setup comparison is hand-written like the reading: keep the page's own
    if doc.is_file() and "## Setup against the paper" in doc.read_text():
        old = doc.read_text()
        setup = "## Setup against the paper" + old.split("## Setup against the paper", 1)[1].split("\n## ", 1)[0]
        text = text.replace("SETUP_PLACEHOLDER", setup.rstrip())
    else:
        text = text.replace("SETUP_PLACEHOLDER", "## Setup against the paper\n\n(to be written)")
    write_keeping_reading(doc, text)


if __name__ == "__main__":
    sys.exit(main())
