"""Reproduce the intruder-dimensions finding on a bundled real model, at CPU scale.

Fine-tunes the model with LoRA r=1, LoRA r=8, rsLoRA at a high rank and full fine-tuning on one
bundled task, then reports per method: task result, intruder counts (k=10, eps=0.5, plus an eps
sweep), forgetting on held-out general text, and the same after scaling intruders by 0.75.
Writes docs/results/intruder-dimensions.md (or --doc) and its figures. Runs are kept in --runs and
reused, so an interrupted run continues where it stopped.

    .venv/bin/python experiments/intruder_dimensions.py                  # MiniLM, sentiment
    .venv/bin/python experiments/intruder_dimensions.py --model smollm2-135m --task recipes-lm \
        --doc docs/results/intruder-dimensions-smollm2.md
"""

from __future__ import annotations

import argparse
import json
import os
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
from _doc import write_keeping_reading  # noqa: E402

from lmscope.data.tasks import make_task, split_rows, task_kind  # noqa: E402
from lmscope.models import open_model  # noqa: E402
from lmscope.models.checkpoint import apply_edits  # noqa: E402
from lmscope.report.plots import plot_similarity  # noqa: E402
from lmscope.spectral import find_intruders  # noqa: E402
from lmscope.spectral.intruders import mitigation_edits  # noqa: E402
from lmscope.train import FinetuneConfig, finetune  # noqa: E402
from lmscope.train.evaluate import classification_accuracy, forgetting_loss, lm_loss  # noqa: E402

CONFIGS = {
    "lora-r1": dict(method="lora", rank=1),
    "lora-r8": dict(method="lora", rank=8),
    "rslora-r64": dict(method="rslora", rank=64),
    "full": dict(method="full"),
}
EPS_SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def task_result(model, tok, test_rows, kind, labels, max_length):
    if kind == "classification":
        return classification_accuracy(model, tok, test_rows, {lab: i for i, lab in enumerate(labels)}, max_length)
    return lm_loss(model, tok, [r["text"] for r in test_rows], max_length)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="comma-separated; NAME@LR overrides the learning rate, e.g. lora-r1@3e-3")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--eps", type=float, default=0.5)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/intruders")
    ap.add_argument("--doc", default="docs/results/intruder-dimensions.md")
    args = ap.parse_args(argv)

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    runs = Path(args.runs) / f"{args.model}-{args.task}-s{args.seed}"
    doc = Path(args.doc)
    figdir = doc.parent / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    stem = doc.stem

    rows = make_task(args.task, args.n, seed=args.seed)
    kind = task_kind(args.task)
    _, test_rows = split_rows(rows, 0.2, args.seed)
    labels = sorted({r["label"] for r in rows}) if kind == "classification" else []
    base = open_model(args.model)

    results = {}
    for name in names:
        run_dir = runs / name
        res_file = runs / f"{name}.json"
        if res_file.is_file():
            results[name] = json.loads(res_file.read_text())
            print(f"[{name}] reusing {res_file}", file=sys.stderr)
            continue
        base_name, _, lr = name.partition("@")
        if base_name not in CONFIGS:
            ap.error(f"unknown config {base_name!r}; known: {', '.join(CONFIGS)}")
        cfg = FinetuneConfig(**CONFIGS[base_name], epochs=args.epochs, max_steps=args.max_steps,
                             batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
                             lr=float(lr) if lr else None)
        t0 = time.time()
        if not (run_dir / "lmscope.json").is_file():
            print(f"[{name}] fine-tuning ({cfg.method}, r={cfg.rank}, lr={cfg.learning_rate})", file=sys.stderr)
            ft = finetune(base, rows, run_dir, cfg)
            metrics = ft.metrics
        else:
            metrics = json.loads((run_dir / "lmscope.json").read_text())["metrics"]
        print(f"[{name}] intruders", file=sys.stderr)
        intr = find_intruders(base, run_dir, k=args.k, eps=args.eps)
        max_cos = np.array([np.array(mc) for mc in intr.table["max_cos"]])
        sweep = {str(e): int((max_cos < e).sum()) for e in EPS_SWEEP}
        sig = intr.signature_matrix()
        np.save(runs / f"{name}-similarity-{sig}.npy", intr.similarity[sig])
        tuned = open_model(run_dir)
        model = tuned.load_model()
        tok = tuned.load_tokenizer()
        apply_edits(model, tuned, mitigation_edits(intr, tuned, args.scale))
        mit_task = task_result(model, tok, test_rows, kind, labels, args.max_length)
        mit_general = forgetting_loss(model, tok)["value"]
        results[name] = {
            "method": cfg.method, "rank": cfg.rank if cfg.method != "full" else None, "lr": cfg.learning_rate,
            "steps": metrics["steps"], "trainable_parameters": metrics["trainable_parameters"],
            "train_seconds": metrics["train_seconds"],
            "task_after": list(metrics["task_after"].values())[0], "task_metric": list(metrics["task_after"])[0],
            "general_metric": metrics["general_before"]["metric"],
            "general_before": metrics["general_before"]["value"], "general_after": metrics["general_after"]["value"],
            "intruders": intr.total, "matrices_with_intruders": int((intr.table["n_intruders"] > 0).sum()),
            "matrices": len(intr.table), "eps_sweep": sweep, "by_role": intr.summary()["by_role"],
            "signature_matrix": sig,
            "mitigated_task": mit_task, "mitigated_general": mit_general, "scale": args.scale,
            "seconds": round(time.time() - t0, 1),
        }
        res_file.write_text(json.dumps(results[name], indent=2) + "\n")

    write_doc(results, names, args, doc, figdir, stem, runs, kind)
    print(f"wrote {doc}", file=sys.stderr)
    return 0


def write_doc(results, names, args, doc, figdir, stem, runs, kind):
    # figures: eps sweep, and the signature similarity matrix of each method
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in names:
        sw = results[name]["eps_sweep"]
        ax.plot([float(e) for e in sw], list(sw.values()), marker="o", label=name)
    ax.set_xlabel("eps (similarity threshold)")
    ax.set_ylabel(f"intruders in the model (top-{args.k})")
    ax.set_yscale("symlog")
    ax.legend(fontsize=8)
    ax.set_title(f"{args.model} on {args.task}: intruders vs eps", fontsize=10)
    fig.savefig(figdir / f"{stem}-eps.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    sims = []
    for name in names:
        sig = results[name]["signature_matrix"]
        f = runs / f"{name}-similarity-{sig}.npy"
        if f.is_file():
            png = figdir / f"{stem}-similarity-{name}.png"
            plot_similarity(np.load(f), sig, args.eps, png, title=f"{name}, matrix {sig}: |cos(u_tuned, u_base)|")
            sims.append((name, png))

    task_label = "task accuracy" if kind == "classification" else "task LM loss"
    gm = results[names[0]]["general_metric"]
    cmd = (f".venv/bin/python experiments/intruder_dimensions.py --model {args.model} --task {args.task} --n {args.n} "
           f"--epochs {args.epochs:g} --batch-size {args.batch_size} --max-length {args.max_length} --seed {args.seed}"
           + (f" --max-steps {args.max_steps}" if args.max_steps else "")
           + f" --configs {','.join(names)} --doc {doc}")
    lines = [
        f"# Intruder dimensions: {args.model} fine-tuned on `{args.task}`",
        "",
        "Regenerate (runs are cached under `runs/`, delete them to retrain):",
        "",
        f"    {cmd}",
        "",
        f"Setup: bundled model `{args.model}`, bundled task `{args.task}` ({args.n} examples, 80/20 train/test split, "
        f"seed {args.seed}), batch {args.batch_size}, max length {args.max_length}, AdamW, linear schedule with 6% "
        "warmup, LoRA alpha = 2r on all linear layers of the transformer blocks. "
        f"Intruders: top-{args.k} left singular vectors of each fine-tuned matrix whose max |cos| with every base "
        f"singular vector is below eps = {args.eps}. Mitigation: intruders' singular values x {args.scale}.",
        "",
        f"Forgetting is `{gm}` on the bundled held-out general text (lower is better; see "
        "`lmscope/train/evaluate.py`).",
        "",
        f"| method | lr | steps | trainable params | {task_label} | intruders (matrices) | {gm} before → after | "
        f"after mitigation: {task_label} | after mitigation: {gm} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r = results[name]
        lines.append(
            f"| {name} | {r['lr']:g} | {r['steps']} | {r['trainable_parameters']:,} | {r['task_after']:.4f} | "
            f"{r['intruders']} ({r['matrices_with_intruders']}/{r['matrices']}) | "
            f"{r['general_before']:.4f} → {r['general_after']:.4f} | {r['mitigated_task']:.4f} | "
            f"{r['mitigated_general']:.4f} |")
    lines += ["", "Intruders per role:", "", "| method | " + " | ".join(results[names[0]]["by_role"]) + " |",
              "|---|" + "---|" * len(results[names[0]]["by_role"])]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(str(v) for v in results[name]["by_role"].values()) + " |")
    lines += ["", "Intruder count against the threshold eps:", "",
              "| method | " + " | ".join(f"eps={e}" for e in EPS_SWEEP) + " |", "|---|" + "---|" * len(EPS_SWEEP)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(str(v) for v in results[name]["eps_sweep"].values()) + " |")
    lines += ["", f"![intruders vs eps](figures/{stem}-eps.png)", ""]
    for name, png in sims:
        lines += [f"![{name} similarity](figures/{png.name})", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
