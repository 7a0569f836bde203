"""Reproduce the LASER finding on a bundled real model, at CPU scale.

By default it runs the pre-registered study (lmscope.spectral.laser_study): the grid fixed before any of
its results were seen (the last 5 layers x fc_in, fc_out x keep 0.1, 0.05, 0.01), scored once on every
factual-recall prompt whose answer is a single token (the paper's CounterFact rule), then 10 seeded
random 20 % validation / 80 % test resplits, each choosing the config with the best validation accuracy
and reporting its test accuracy minus the unmodified model's with a paired bootstrap 95 % interval. With
--first-token it runs the same study with first-token scoring (every prompt) as well. It writes docs/results/laser.md (or --doc), keeping the
page's hand-written reading, and each study's JSON to --runs.

With --full it also runs the earlier exploratory search (every layer x fc_in/fc_out x nine kept
fractions, one seeded split, greedy composition) on the factual-recall and true/false sets, and
writes the best single reduction as a factored checkpoint; that part scores 1,080 configs, hours on 2
CPU cores (--layers 20-29 restricts it; searches resume from lmscope's progress files).

    .venv/bin/python experiments/laser.py            # the study, 5-30 min on 2 CPU cores, with load
    .venv/bin/python experiments/laser.py --full     # and the exploratory search
    .venv/bin/python experiments/laser.py --reuse    # rewrite the page from the studies in --runs
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

import json  # noqa: E402

import numpy as np  # noqa: E402
from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope._io import atomic_dir, read_text, write_json  # noqa: E402
from lmscope.data.evalsets import load_eval_task  # noqa: E402
from lmscope.lm.scoring import evaluate_model  # noqa: E402
from lmscope.report.html import Report  # noqa: E402
from lmscope.report.sections import laser_section  # noqa: E402
from lmscope.spectral.laser import Reduction, apply_laser  # noqa: E402
from lmscope.spectral.laser_search import SCORINGS, SearchConfig, laser_search, split_indices  # noqa: E402
from lmscope.spectral.laser_study import StudyConfig, laser_study  # noqa: E402

TASKS = ("factual_recall", "true_false")
STUDY_TASK = "factual_recall"


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
    ap.add_argument("--layers", help="--full only: layers of the exploratory search, e.g. 20-29 (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resplits", type=int, default=10)
    ap.add_argument("--first-token", action="store_true",
                    help="also run the study with first-token scoring (every prompt; about twice the time)")
    ap.add_argument("--full", action="store_true", help="also run the exploratory full-grid search (hours on 2 CPU cores)")
    ap.add_argument("--reuse", action="store_true", help="take the studies from --runs instead of running them")
    ap.add_argument("--runs", default="runs/laser")
    ap.add_argument("--doc", default="docs/results/laser.md")
    args = ap.parse_args(argv)
    runs, doc = Path(args.runs), Path(args.doc)
    runs.mkdir(parents=True, exist_ok=True)
    studies = {}
    for scoring in ["single-token"] + (["first-token"] if args.first_token else []):
        path = runs / f"study-{args.model}-{STUDY_TASK}-{scoring}.json"
        if args.reuse:
            studies[scoring] = json.loads(read_text(path, "study"))
            continue
        cfg = StudyConfig(scoring=scoring, resplits=args.resplits, seed=args.seed)
        t0 = time.time()
        print(f"== LASER study: {args.model} on {STUDY_TASK}, {scoring} scoring", flush=True)
        res = laser_study(args.model, STUDY_TASK, cfg, log=print)
        print("\n".join(res.summary_lines()), f"({time.time() - t0:.0f} s)", flush=True)
        studies[scoring] = res.to_dict()
        write_json(path, studies[scoring])
    full = run_full(args, runs, doc) if args.full else None
    write_doc(doc, args, studies, full)
    print(f"wrote {doc}")
    return 0


def run_full(args, runs: Path, doc: Path):
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
        dense = apply_laser(args.model, reds, dense_dir, quiet=True, force=True)
        fres = apply_laser(args.model, reds, fac_dir, factored=True, quiet=True, force=True)
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
    return cfg, results, fac


def full_sections(args, cfg: SearchConfig, results: dict, fac: list[dict]) -> list[str]:
    """The page's sections on the exploratory full-grid search (run with --full)."""
    fr = results["factual_recall"]
    lines = [
        "## Exploratory search: every layer, one split",
        "",
        "Exploratory, not pre-registered; first-token scoring. The searches it runs are the CLI's:",
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
        "### Held-out test results",
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
        lines += [f"### {name}: every config", "",
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
        lines += ["### Stored factored", "",
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
    lines += ["### Masked-LM encoder", "",
              "The bundled MiniLM (all-MiniLM-L6-v2) is a sentence encoder shipped without its masked-LM head, so "
              "it cannot fill a mask and has no LASER result here. The scorer supports masked LMs that have "
              "their head (BERT/RoBERTa `…ForMaskedLM` checkpoints): the answer's tokens are scored at mask "
              "positions after the prompt; the test suite checks this on a tiny BERT.", ""]
    return lines


SETUP = [
    # (aspect, ours, the paper and the authors' code, why different, kind)
    ("Model", "SmolLM2-135M-Instruct: 30 layers, width 576, MLP width 1,536",
     "GPT-J 6B (28 layers, width 4,096, MLP 16,384) for the headline CounterFact result; also Llama-2 7B "
     "and Phi-1.5", "the only causal LM bundled; nothing downloads", "scale (model size, width/depth)"),
    ("Weights", "the bundled GGUF, Q4_1-quantized, dequantized to float32 on load",
     "GPT-J in float16 (unquantized)", "the bundled file is the only copy", "setup (cannot be removed here)"),
    ("Training", "instruction-tuned",
     "pretrained base models, no instruction tuning", "the bundled model is the Instruct variant",
     "setup (cannot be removed here)"),
    ("Training data and steps", "SmolLM2's pretraining corpus and schedule",
     "GPT-J: the Pile", "different models", "scale (training data, steps)"),
    ("Facts", "bundled factual_recall: 1,676 hand-written prompts over 21 relations, one prompt per fact",
     "CounterFact (ROME): each fact's rewrite prompt and its 2 paraphrases, 3 prompts per fact "
     "(about 65,000 prompts)", "the bundled set is what ships; CounterFact would need a download",
     "scale (data size); the facts themselves differ"),
    ("Answers scored", "single-token: the prompts whose answer, after a space, is one token of SmolLM2's "
     "tokenizer (first-token scoring of all prompts: --first-token)",
     "GPT-J/Phi-1.5 scripts assert the answer with its leading space is one token; the Llama-2 script "
     "generates up to 10 tokens and checks the answer is in them", "same rule as the GPT-J script", "same"),
    ("Top-1", "the model's most likely next token, lower-cased and stripped, equals the answer; no aliases",
     "the same comparison (case-insensitive, whitespace stripped)", "–", "same"),
    ("Grid", "pre-registered: layers 25–29 (the last 5) × fc_in (gate_proj), fc_out (down_proj) × keep "
     "0.1, 0.05, 0.01: 30 configs",
     "the CounterFact scripts score one (layer, matrix, rate) per run; the grid loops in the BBH scripts: "
     "GPT-J layers 17–27 (the last 11) at rate 1–9.95 (keep 0.9 down to 0.005), Llama-2 layers 27–31 (the "
     "last 5) at rate 8–9.95 (keep 0.2 down to 0.005), fc_in and fc_out; the headline GPT-J CounterFact "
     "reduction is layer 27 fc_in at keep 0.01", "the paper's regime only (late MLP, keep ≤ 0.1), fixed before the run, to keep selection "
     "noise small", "choice (a subset of theirs)"),
    ("Low rank", "exact SVD, k = floor(keep · min(m, n)), at least 1",
     "torch.svd_lowrank (randomized, 2 power iterations), k = int(keep · min(m, n))",
     "the exact truncation the randomized one approximates", "method detail"),
    ("Validation / test", "10 seeded random resplits, 20 % validation / 80 % test",
     "one split: the first 20 % of the dataset in file order validation, the rest test",
     "our file is sorted by relation, so a file-order split would hold out whole relations",
     "choice"),
    ("Selection", "validation accuracy, ties by lower validation log-loss",
     "validation accuracy, ties by lower validation log-loss", "–", "same"),
    ("Uncertainty", "paired bootstrap 95 % interval over test prompts per resplit (2,000 resamples), and "
     "over resplits", "not reported", "–", "added"),
]


def pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def write_doc(doc: Path, args, studies: dict, full) -> None:
    cmd = ("PYTHONPATH=src .venv/bin/python experiments/laser.py" + (" --first-token" if "first-token" in studies
                                                                     else "") + (" --full" if full else ""))
    st = studies["single-token"]
    c = st["config"]
    grid_text = (f"layers {c['layers'][0]}–{c['layers'][-1]} × {', '.join(c['roles'])} × keep "
                 f"{', '.join(f'{k:g}' for k in c['keeps'])}")
    lines = [
        f"# LASER on {args.model}",
        "",
        "*The Truth is in There: Improving Reasoning in Language Models with Layer-Selective Rank Reduction* "
        "(Sharma, Ash & Misra, 2023) replaces one weight matrix by its best rank-k approximation, after "
        "training, and reports large gains on factual questions, mostly from late-layer MLP matrices at very "
        "small kept fractions (GPT-J on CounterFact: 13.1 % → 24.0 % with fc_in of layer 27 at keep 0.01).",
        "",
        "Regenerate this page (the study: a few minutes on 2 idle CPU cores; `--first-token` adds the study with "
        "first-token scoring, `--full` the exploratory search, hours more):",
        "",
        "```",
        cmd,
        "```",
        "",
        "The studies it runs are the CLI's:",
        "",
        "```",
        *[f"lmscope laser study {args.model} --task {STUDY_TASK} --scoring {sc} --resplits {s['config']['resplits']}"
          f" --seed {s['config']['seed']}" for sc, s in studies.items()],
        "```",
        "",
        "## Setup against the paper's",
        "",
        "Facts about the paper's setup are from the authors' code (github.com/pratyushasharma/laser: "
        "`src/intervention_gptj_counterfact.py`, `src/intervention_gptj_bbh.py`, `src/laser/matrix_utils.py`, "
        "`src/dataset_utils/counterfact.py`, `src/abstract_experiment.py`). *Scale* marks a difference of model "
        "size, width/depth, training data or steps, or data size; *setup* one of what is being tested.",
        "",
        md_table(["", "ours", "paper (authors' code)", "why different", "kind"], [list(r) for r in SETUP]),
        "",
        "## Pre-registered study",
        "",
        f"Grid, chosen before any of its results were seen: {grid_text} ({len(st['grid'])} configs). Each "
        "config is scored once on every prompt the scoring keeps. Then, for each of "
        f"{c['resplits']} resplits r (a seeded shuffle with seed {c['seed']} + r; the first "
        f"{c['val_fraction']:.0%} validation, the rest test), the config with the best validation accuracy "
        "(ties: lower log-loss, then grid order) is chosen, and its test accuracy minus the unmodified "
        "model's on the same test prompts is reported with a paired bootstrap 95 % interval over those "
        f"prompts ({c['n_boot']:,} resamples). *Fixed*: test prompts the unmodified model gets wrong that "
        "the chosen reduction gets right; *broken*: the reverse.",
        "",
    ]
    rows = []
    for sc, s in studies.items():
        m = s["summary"]
        rows.append([sc, f"{s['n_scored']:,} of {s['n_task']:,}", pct(s["base"]["accuracy"]),
                     f"{pts(m['mean_delta'])} [{pts(m['lo'])}, {pts(m['hi'])}]",
                     f"{pts(m['min_delta'])} to {pts(m['max_delta'])}",
                     f"{m['interval_above_zero']} / {m['interval_below_zero']}",
                     f"{m['beats_base_on_val']} of {m['resplits']}",
                     f"{m['fixed']:,} of {m['base_wrong']:,} ({pct(m['fixed'] / max(1, m['base_wrong']))})",
                     f"{m['broken']:,} of {m['base_right']:,} ({pct(m['broken'] / max(1, m['base_right']))})"])
    lines += [md_table(["scoring", "prompts kept", "unmodified top-1 (all kept)",
                        "test Δ points, mean over resplits [95 % interval over resplits]", "range over resplits",
                        "resplits whose interval is above / below 0", "chosen beats unmodified on validation",
                        "fixed (summed over resplits)", "broken (summed over resplits)"], rows), "",
              "Scorings: " + "; ".join(f"*{k}*: {v}" for k, v in SCORINGS.items()) + "."
              + ("" if "first-token" in studies else
                 f" First-token scoring keeps all {st['n_task']:,} prompts; its study is added with `--first-token` "
                 "(not run for this page: it takes about twice as long).") + " The resplits share "
              "prompts, so the interval over resplits is narrower than an independent-sample one; the "
              "per-resplit intervals below are the honest unit.", ""]
    for sc, s in studies.items():
        lines += [f"### {sc} scoring: each resplit", "",
                  md_table(["resplit (seed)", "val / test n", "chosen (layer:role:keep)", "val: unmodified → chosen",
                            "test: unmodified → chosen", "test Δ points [95 % interval]", "fixed", "broken"],
                           [[f"{r['resplit']} ({r['split_seed']})", f"{r['n_val']} / {r['n_test']}",
                             f"{r['layer']}:{r['role']}:{r['keep']:g} (rank {r['rank']})",
                             f"{pct(r['val_base'])} → {pct(r['val_chosen'])}",
                             f"{pct(r['test_base'])} → {pct(r['test_chosen'])}",
                             f"{pts(r['delta'])} [{pts(r['lo'])}, {pts(r['hi'])}]",
                             f"{r['fixed']} of {r['base_wrong']}", f"{r['broken']} of {r['base_right']}"]
                            for r in s["resplits"]]), ""]
    for sc, s in studies.items():
        lines += [f"### {sc} scoring: every config on all {s['n_scored']:,} kept prompts", "",
                  "No selection here: each config against the unmodified model on every kept prompt "
                  f"(unmodified: {pct(s['base']['accuracy'])}, log-loss {s['base']['logloss']:.3f}).", "",
                  md_table(["layer", "role", "keep", "rank", "top-1", "Δ points [95 % interval]", "log-loss",
                            "fixed", "broken"],
                           [[g["layer"], g["role"], f"{g['keep']:g}", g["rank"], pct(g["accuracy"]),
                             f"{pts(g['d_accuracy'])} [{pts(g['lo'])}, {pts(g['hi'])}]", f"{g['logloss']:.3f}",
                             f"{g['fixed']} of {g['base_wrong']}", f"{g['broken']} of {g['base_right']}"]
                            for g in s["grid"]]), ""]
        t = s.get("timing", {})
        if t.get("seconds_per_config"):
            lines += [f"Speed in this run: unmodified model {t['base_seconds']:.0f} s, the {t['configs']} configs "
                      f"{t['grid_seconds']:.0f} s ({t['seconds_per_config']:.1f} s each, replaying the stored input "
                      "of the edited layer).", ""]
    if full:
        lines += full_sections(args, *full)
    else:
        lines += ["## Exploratory search", "",
                  "The earlier exploratory search (every layer × fc_in, fc_out × nine kept fractions from 0.9 to "
                  "0.005, first-token scoring, one seeded split, greedy composition; factual recall and true/false; "
                  "factored storage of the result) is not on this page as regenerated; `experiments/laser.py "
                  "--full` runs it and adds its sections (1,080 configs: hours on 2 CPU cores). Its single split "
                  "selects from hundreds of configs on a few hundred prompts, which the resplit study above was "
                  "built to avoid, so its figures are not part of this page's reading.", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


def _beats(a: dict, b: dict) -> bool:
    from lmscope.lm.scoring import better

    return better(a, b)


if __name__ == "__main__":
    sys.exit(main())
