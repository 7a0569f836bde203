"""Reproduce the LASER finding on a bundled real model, at CPU scale.

Runs the full LASER search (every layer x fc_in/fc_out x the paper's nine kept fractions, 20 %
validation / 80 % test, seed 0) of the model on the bundled factual-recall set and on the bundled
true/false set, with greedy composition; then writes the best single reduction as a factored
checkpoint (and an aggressive reduction of the last six layers' MLPs) and scores them again, to check
the factored model gives the same numbers with fewer parameters. Writes docs/results/laser.md (or --doc) and its figures; each search's report folder
goes to --runs. Searches resume from lmscope's progress files, so an interrupted run continues.

    .venv/bin/python experiments/laser.py                    # SmolLM2-135M, about 40 min on 2 CPU cores
    .venv/bin/python experiments/laser.py --layers 20-29     # a quicker, partial grid
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope._io import atomic_dir  # noqa: E402
from lmscope.data.evalsets import load_eval_task  # noqa: E402
from lmscope.lm.scoring import evaluate_model  # noqa: E402
from lmscope.report.html import Report  # noqa: E402
from lmscope.report.sections import laser_section  # noqa: E402
from lmscope.spectral.laser import Reduction, apply_laser  # noqa: E402
from lmscope.spectral.laser_search import SearchConfig, laser_search, split_indices  # noqa: E402

TASKS = ("factual_recall", "true_false")


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def layers_arg(text: str | None):
    if not text:
        return None
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def per_relation(task_name: str, seed: int, val_fraction: float, per_example: dict) -> list[list]:
    """Test accuracy per relation for each model in ``per_example`` (rows in test order)."""
    task = load_eval_task(task_name)
    _, test_idx = split_indices(len(task), val_fraction, seed)
    rel = [task.rows[i]["id"].rsplit("-", 1)[0] for i in test_idx]
    out = []
    for r in sorted(set(rel)):
        idx = [i for i, x in enumerate(rel) if x == r]
        out.append([r, len(idx)] + [pct(np.mean([per_example[m][i]["top1"] for i in idx])) for m in per_example])
    return out


def paired(per_example: dict, a: str, b: str) -> str:
    """Examples ``b`` gets right and ``a`` wrong, the reverse, and McNemar's exact two-sided p-value."""
    from scipy.stats import binomtest

    x = np.array([r["top1"] for r in per_example[a]], dtype=bool)
    y = np.array([r["top1"] for r in per_example[b]], dtype=bool)
    gained, lost = int(np.sum(y & ~x)), int(np.sum(x & ~y))
    p = binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
    return f"+{gained} / −{lost} examples, McNemar p = {p:.2f}"




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--layers", help="e.g. 20-29 (default: every layer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/laser")
    ap.add_argument("--doc", default="docs/results/laser.md")
    args = ap.parse_args(argv)
    runs, doc = Path(args.runs), Path(args.doc)
    figs = doc.parent / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    cfg = SearchConfig(layers=layers_arg(args.layers), seed=args.seed)
    results = {}
    for name in TASKS:
        t0 = time.time()
        print(f"== LASER search: {args.model} on {name}", flush=True)
        res = laser_search(args.model, name, cfg, log=print)
        results[name] = res
        print("\n".join(res.summary_lines()), f"({time.time() - t0:.0f} s)", flush=True)
        out = runs / f"{args.model}-{name}"
        with atomic_dir(out) as tmp:
            rep = Report(tmp, f"LASER search: {args.model} on {name}")
            laser_section(rep, res)
            rep.write()
        shutil.copy(out / "laser_heatmap.png", figs / f"laser-{args.model}-{name}.png")

    # the best factual-recall reduction, and an aggressive one, stored dense and factored, scored on the whole set
    fr = results["factual_recall"]
    fac = []
    last = fr.config["layers"][-6:]
    cases = []
    if fr.best:
        cases.append(("best single", [Reduction(fr.best["layer"], fr.best["role"], fr.best["keep"])]))
    cases.append((f"fc_in and fc_out of layers {last[0]}-{last[-1]} at keep 0.05",
                  [Reduction(L, r, 0.05) for L in last for r in ("fc_in", "fc_out")]))
    for i, (label, reds) in enumerate(cases):
        dense_dir, fac_dir = runs / f"case{i}-dense", runs / f"case{i}-factored"
        dense = apply_laser(args.model, reds, dense_dir, quiet=True)
        fres = apply_laser(args.model, reds, fac_dir, factored=True, quiet=True)
        _, s_dense = evaluate_model(dense_dir, "factual_recall", quiet=True)
        _, s_fac = evaluate_model(fac_dir, "factual_recall", quiet=True)

        def size(d):
            return sum(p.stat().st_size for p in Path(d).glob("*.safetensors"))

        fac.append({"label": label, "reds": reds, "dir": fac_dir, "dense_parameters": dense["parameters_after"],
                    "factored_parameters": fres["parameters_after"], "acc_dense": s_dense.summary()["accuracy"],
                    "acc_factored": s_fac.summary()["accuracy"],
                    "max_logprob_diff": float(np.max(np.abs(s_dense.logprob - s_fac.logprob))),
                    "bytes_dense": size(dense_dir), "bytes_factored": size(fac_dir)})
    _, s_base = evaluate_model(args.model, "factual_recall", quiet=True)
    base_acc = s_base.summary()["accuracy"]
    for f in fac:
        f["acc_base"] = base_acc

    write_doc(doc, args, cfg, results, fac)
    print(f"wrote {doc}")
    return 0


def write_doc(doc: Path, args, cfg: SearchConfig, results: dict, fac: list[dict]) -> None:
    cmd = "PYTHONPATH=src .venv/bin/python experiments/laser.py" + (f" --layers {args.layers}" if args.layers else "")
    fr = results["factual_recall"]
    lines = [
        f"# LASER on {args.model}",
        "",
        "*The Truth is in There: Improving Reasoning in Language Models with Layer-Selective Rank Reduction* "
        "(Sharma, Ash & Misra, 2023) replaces one weight matrix by its best rank-k approximation, after "
        "training, and reports large gains on factual questions, mostly from late-layer MLP matrices at very "
        "small kept fractions (GPT-J on CounterFact: 13.1 % → 24.0 % with fc_in of layer 27 at keep 0.01).",
        "",
        "Regenerate this page (about 40 minutes on 2 CPU cores; searches resume if interrupted):",
        "",
        "```",
        cmd,
        "```",
        "",
        "The searches it runs are the CLI's:",
        "",
        "```",
        *[f"lmscope laser search {args.model} --task {t}" + (f" --layers {args.layers}" if args.layers else "")
          + f" --seed {cfg.seed} --out runs/laser/{args.model}-{t}" for t in TASKS],
        "```",
        "",
        f"Grid: layers {fr.config['layers'][0]}–{fr.config['layers'][-1]} × roles "
        f"{', '.join(fr.config['roles'])} × keep ∈ {{{', '.join(f'{k:g}' for k in cfg.keeps)}}} "
        f"({len(fr.table)} configs per task). Split: seeded shuffle (seed {cfg.seed}), first "
        f"{cfg.val_fraction:.0%} validation, the rest test. Selection: validation accuracy, ties by lower "
        "log-loss. Composition: each (layer, role)'s best keep that beats the unmodified model alone, tried "
        "from the last layer down on top of those kept so far, kept only if validation improves.",
        "",
        "Metrics: top-1 is the model's most likely next token against the first token of the answer (or an "
        "alias), compared case- and whitespace-insensitively; for true/false the two answers' log-probs are "
        "compared. Log-loss is −log p(answer) per answer token (true/false: −log of the gold answer's "
        "probability among the two).",
        "",
        "## Held-out test results",
        "",
    ]
    rows = []
    for name, res in results.items():
        n = res.n_test
        rows.append([name, n, "unmodified", "–", pct(res.base["test"]["accuracy"]),
                     f"{res.base['test']['logloss']:.3f}"])
        if res.best:
            b = res.best
            mark = "" if _beats(b["val"], res.base["val"]) else " (no gain on validation)"
            rows.append([name, n, "best single", f"{b['layer']}:{b['role']}:{b['keep']:g} (rank {b['rank']}){mark}",
                         pct(b["test"]["accuracy"]), f"{b['test']['logloss']:.3f}"])
        if res.composed:
            c = res.composed
            what = ", ".join(f"{r['layer']}:{r['role']}:{r['keep']:g}" for r in c["reductions"]) or "none kept"
            rows.append([name, n, "composed", what, pct(c["test"]["accuracy"]), f"{c['test']['logloss']:.3f}"])
    lines += [md_table(["task", "test n", "model", "reduction (layer:role:keep)", "top-1 accuracy", "log-loss"],
                       rows), ""]
    lines += ["Against the unmodified model on the same test examples (examples turned right / turned wrong):", ""]
    for name, res in results.items():
        for m in ("best", "composed"):
            if m in res.per_example and res.kind != "text":
                lines.append(f"- {name}, {m}: {paired(res.per_example, 'base', m)}")
    lines.append("")
    lines += ["Validation accuracy of the same models (what the selection saw):", ""]
    vrows = []
    for name, res in results.items():
        vrows.append([name, res.n_val, pct(res.base["val"]["accuracy"]),
                      pct(res.best["val"]["accuracy"]) if res.best else "–",
                      pct(res.composed["val"]["accuracy"]) if res.composed else "–"])
    lines += [md_table(["task", "validation n", "unmodified", "best single", "composed"], vrows), ""]

    for name, res in results.items():
        lines += [f"## {name}: every config", "",
                  f"![LASER heatmap {name}](figures/laser-{args.model}-{name}.png)", "",
                  "Change in validation accuracy against the unmodified model (percentage points; blue = better), "
                  "per layer and kept fraction.", ""]
        df = res.frame()
        top = df.sort_values(["accuracy", "logloss"], ascending=[False, True]).head(8)
        lines += ["Top validation configs:", "",
                  md_table(["layer", "role", "keep", "rank", "val accuracy", "Δ points", "val log-loss"],
                           [[int(r.layer), r.role, f"{r.keep:g}", int(r.rank), pct(r.accuracy),
                             f"{100 * r.d_accuracy:+.1f}", f"{r.logloss:.3f}"] for r in top.itertuples()]), ""]
        improving = df[df["d_accuracy"] > 1e-12]
        by_layer = improving.groupby(improving["layer"] >= (max(df["layer"]) + 1) * 2 // 3).size()
        late = int(by_layer.get(True, 0))
        lines += [f"Configs that beat the unmodified model on validation: {len(improving)} of {len(df)} "
                  f"({late} of them in the last third of the layers; by role: "
                  + ", ".join(f"{r} {int((improving['role'] == r).sum())}" for r in sorted(df["role"].unique()))
                  + f"; at keep ≤ 0.05: {int((improving['keep'] <= 0.05).sum())}).", ""]
        if name == "factual_recall" and "best" in res.per_example:
            models = ["base", "best"] + (["composed"] if "composed" in res.per_example else [])
            lines += ["Test accuracy per relation:", "",
                      md_table(["relation", "n", *models], per_relation(name, cfg.seed, cfg.val_fraction,
                                                                        {m: res.per_example[m] for m in models})), ""]
        t = res.timing
        if t.get("configs_per_second"):
            lines += [f"Search speed in this run: {t['scored_now']} configs in {t['seconds']:.0f} s "
                      f"({t['configs_per_second']:.2f} configs/s on {res.n_val} validation examples).", ""]

    if fac:
        lines += ["## Stored factored", "",
                  "Each reduction written once dense and once `--factored` (two thin factors per matrix), then "
                  "both scored on all 1,676 factual-recall prompts:", "", "```"]
        for f in fac:
            reds = " ".join(f"--reduce {r.layer}:{r.role}:{r.keep:g}" for r in f["reds"])
            lines.append(f"lmscope laser apply {args.model} {reds} --factored --out {f['dir']}")
            lines.append(f"lmscope eval {f['dir']} --task factual_recall")
        lines += ["```", "",
                  md_table(["reduction", "storage", "parameters", "weight file bytes", "accuracy (all 1,676)"],
                           [r for f in fac for r in (
                               [f["label"], "dense", f"{f['dense_parameters']:,}", f"{f['bytes_dense']:,}",
                                pct(f["acc_dense"])],
                               [f["label"], "factored", f"{f['factored_parameters']:,}", f"{f['bytes_factored']:,}",
                                pct(f["acc_factored"])])]), "",
                  f"The unmodified model scores {pct(fac[0]['acc_base'])} on all 1,676. Largest per-example "
                  "difference in answer log-prob between dense and factored: "
                  + ", ".join(f"{f['max_logprob_diff']:.1e}" for f in fac) + ".", ""]
    lines += ["## Masked-LM encoder", "",
              "The bundled MiniLM (all-MiniLM-L6-v2) is a sentence encoder shipped without its masked-LM head, so "
              "it cannot fill a mask and has no LASER result here. The scorer supports masked LMs that have "
              "their head (BERT/RoBERTa `…ForMaskedLM` checkpoints): the answer's tokens are scored at mask "
              "positions after the prompt; the test suite checks this on a tiny BERT.", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


def _beats(a: dict, b: dict) -> bool:
    from lmscope.lm.scoring import better

    return better(a, b)


if __name__ == "__main__":
    sys.exit(main())
