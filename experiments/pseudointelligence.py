"""Pseudointelligence at CPU scale: two case studies of evaluation as a distinguishing game.

1. A model that memorized a static benchmark (exact on its 1,000 public question-formation queries,
   the linear rule elsewhere) against the static benchmark and against learned evaluators, at one
   budget and as the evaluator's sample budget grows.
2. The pseudointelligence profile (advantage vs the evaluator's sample budget) of the bundled
   SmolLM2-135M-Instruct (few-shot, greedy) and of a small transformer trained by
   ``lmscope grok train`` on question formation, judged by the auxiliary the question starts with
   (``question-formation-aux``, the metric of the grokking papers).

Every game is kept in a JSONL transcript under --runs (gitignored; each replays with
``lmscope eval game --replay FILE``); the small transformer is trained there too (resumably), and
the LM's answers are kept in lmscope's LM cache, so a rerun costs only the games.

    PYTHONPATH=src .venv/bin/python experiments/pseudointelligence.py      # ~25 min on 2 CPU cores
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

import pandas as pd  # noqa: E402
from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope.evaluation import (  # noqa: E402
    BOOTSTRAP_RESAMPLES,
    Resources,
    get_capability,
    make_oracle,
    play_games,
    profile,
)
from lmscope.evaluation.oracles import Memo  # noqa: E402
from lmscope.report.plots import plot_profile  # noqa: E402

CAP = "question-formation"
CAP2 = "question-formation-aux"  # case 2: judged by the first word of the question
CASE1_EVALUATORS = ["static", "fresh", "adaptive", "discriminator", "self"]


def fmt(s: dict) -> list[str]:
    return [f"{s['advantage']:.2f}", f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]",
            f"{s['signed_advantage']:+.2f}", f"[{s['signed_ci_low']:+.2f}, {s['signed_ci_high']:+.2f}]",
            f"{s['p_model_given_model']:.2f}", f"{s['p_model_given_truth']:.2f}", str(s["n"])]


def train_small(run: Path, steps: int, log) -> dict:
    from lmscope.grokking import grok_train

    t0 = time.time()
    res = grok_train(CAP, run, layers=2, steps=steps, lr=5e-4, batch_size=16, eval_every=1000, ckpt_every=1000,
                     n_train=2000, sample_size=200, tree_sample=0, quiet=True)
    log(f"small transformer: step {res['step']} in {time.time() - t0:.0f} s, last metrics {res['last_metrics']}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/pseudointelligence", help="transcripts and the small run")
    ap.add_argument("--doc", default="docs/results/pseudointelligence.md")
    ap.add_argument("--games", type=int, default=200, help="games per point of case 1 (default 200)")
    ap.add_argument("--small-games", type=int, default=60, help="games per point, small transformer (default 60)")
    ap.add_argument("--lm-games", type=int, default=20, help="games per point, SmolLM2 (default 20)")
    ap.add_argument("--steps", type=int, default=10000, help="training steps of the small transformer")
    ap.add_argument("--lm", default="local:smollm2-135m")
    args = ap.parse_args(argv)
    runs, doc = Path(args.runs), Path(args.doc)
    figs = doc.parent / "figures" / "pseudointelligence"
    figs.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    cap, cap2 = get_capability(CAP), get_capability(CAP2)
    timings = {}

    # ---------------------------------------------------------------- case 1: the memorizer
    t0 = time.time()
    mem = Memo(make_oracle("memorizer", cap))
    base = Resources(32, 2, 2)
    case1 = {}
    for ev in CASE1_EVALUATORS:
        r = play_games(cap, mem, ev, base, args.games, seed=0,
                       transcript=runs / "case1" / f"memorizer__{ev}__s32-r2-q2.jsonl", quiet=True)
        case1[ev] = r.stats()
        log(f"case 1: {ev}: {case1[ev]['advantage']:.3f} (signed {case1[ev]['signed_advantage']:+.3f})")
    prof1 = profile(cap, {"memorizer": mem}, ["static", "fresh", "adaptive", "discriminator"], "samples",
                    [4, 8, 16, 32, 64, 128], Resources(4, 2, 2), args.games, seed=0,
                    transcripts=runs / "case1-profile", quiet=True, log=log)
    plot_profile(prof1.table, figs / "memorizer-profile.png", "samples",
                 "Memorizer of the static benchmark (question formation, 2 rounds x 2 queries)")
    timings["case 1"] = time.time() - t0

    # ---------------------------------------------------------------- case 2: SmolLM2 and a small transformer
    t0 = time.time()
    run = runs / "small-qf-l2"
    small_train = train_small(run, args.steps, log)
    timings["training"] = time.time() - t0
    t0 = time.time()
    evs = ["fresh", "adaptive", "discriminator"]
    small = profile(cap2, {"small transformer (2 layers)": make_oracle(f"small:{run}", cap2)}, evs, "samples",
                    [4, 8, 16, 32, 64, 128], Resources(4, 2, 2), args.small_games, seed=0,
                    transcripts=runs / "case2-small", quiet=True, log=log)
    timings["small profile"] = time.time() - t0
    t0 = time.time()
    from lmscope.lm import open_lm

    lm = open_lm(args.lm)
    lm_oracle = make_oracle("lm", cap2, lm_factory=lambda spec: lm)
    lm_full = make_oracle("lm", cap, lm_factory=lambda spec: lm)  # the whole question, for exact match
    try:
        smol = profile(cap2, {"SmolLM2-135M (4-shot)": lm_oracle}, evs, "samples", [4, 8, 16, 32],
                       Resources(4, 2, 2), args.lm_games, seed=0, transcripts=runs / "case2-lm", quiet=True, log=log)
        timings["LM profile"] = time.time() - t0
        # accuracy of each model on fresh id / gen queries (what the evaluators are up against)
        import numpy as np

        acc = {}
        small_oracle = make_oracle(f"small:{run}", cap2)
        for name, first, whole, n in (("small transformer (2 layers)", small_oracle, small_oracle, 200),
                                      ("SmolLM2-135M (4-shot)", lm_oracle, lm_full, 40)):
            rng = np.random.default_rng(99)
            row = {}
            for split in ("id", "gen"):
                qs = cap.sample_queries(rng, n, split)
                a1 = first.respond(qs)
                a2 = a1 if whole is first else whole.respond(qs)
                row[split] = (sum(cap2.is_correct(q, a) for q, a in zip(qs, a1)) / n,
                              sum(cap.is_correct(q, a) for q, a in zip(qs, a2)) / n, n)
            acc[name] = row
        cache = getattr(lm, "stats", None)
    finally:
        lm.close()
    both = pd.concat([small.table, smol.table], ignore_index=True)
    plot_profile(both, figs / "profile.png", "samples",
                 "Pseudointelligence profile on question formation, first word (2 rounds x 2 queries)")
    example = lm_oracle.prompt("the yak doesn't sleep")
    write_doc(doc, args, case1, prof1, small, smol, acc, small_train, timings, cache, example, runs)
    print(f"wrote {doc}")
    return 0


def write_doc(doc, args, case1, prof1, small, smol, acc, small_train, timings, cache, example, runs) -> None:
    def piv(table):
        """Per cell: the advantage [its bootstrap interval], and the signed value when it is negative."""
        def get(col):
            return table.pivot_table(index=["model", "evaluator"], columns="value", values=col, sort=False)

        t, lo, hi, sg = get("advantage"), get("ci_low"), get("ci_high"), get("signed_advantage")

        def cell(idx, c):
            if pd.isna(t.loc[idx, c]):
                return "–"
            text = f"{t.loc[idx, c]:.2f} [{lo.loc[idx, c]:.2f}, {hi.loc[idx, c]:.2f}]"
            return text + (f" (signed {sg.loc[idx, c]:+.2f})" if sg.loc[idx, c] < 0 else "")

        rows = [[idx[0], idx[1]] + [cell(idx, c) for c in t.columns] for idx in t.index]
        return md_table(["model", "evaluator"] + [f"samples {c}" for c in t.columns], rows)

    cmd = "PYTHONPATH=src .venv/bin/python experiments/pseudointelligence.py"
    lines = [
        "# Pseudointelligence: evaluation as a distinguishing game",
        "",
        "Paper: Murty, Paradise, Sharma, *Pseudointelligence: A Unifying Framework for Language Model "
        "Evaluation* (Findings of EMNLP 2023). A model g is compared with a capability μ (here: question "
        "formation, with its ground truth computed from the grammar) by an evaluator learner with bounded "
        "resources. A hidden fair coin picks g or μ; the evaluator asks its queries, sees the answers and "
        "guesses which it faced. Advantage = |P(says model | g) − P(says model | μ)|, as the paper defines it "
        "(0: cannot tell them apart; 1: always can, whichever way round it guesses); the signed value "
        "P(says model | g) − P(says model | μ) = 2 P(correct) − 1 is shown beside it (negative: the evaluator "
        "takes μ for the model). The paper is conceptual (no experiments); the two case studies below are the ones its framework reasons "
        "about, run as software (`lmscope.evaluation`).",
        "",
        f"Regenerate everything (~{sum(timings.values()) / 60:.0f} min on 2 CPU cores): `{cmd}`. "
        f"Transcripts of every game are written under `{runs}/` (gitignored); each replays without the model, "
        f"e.g. `lmscope eval game --replay {runs}/case1/memorizer__static__s32-r2-q2.jsonl`.",
        "",
        "Games come in pairs with opposite coins (seeded order), so an evaluator that always gives the same "
        "answer scores exactly 0. The interval of the advantage is a 95 % percentile bootstrap over whole coin "
        f"pairs ({BOOTSTRAP_RESAMPLES} resamples, seeded by the game seed) of the signed difference, folded "
        "through |·| (it starts at 0 when the signed interval holds 0; `lmscope.evaluation.abs_advantage_interval`); "
        "when every pair gave the same result it has width 0, and the Wilson 95 % interval of P(correct), mapped "
        "to the signed value, shows the sampling uncertainty. Profile tables show the advantage [its interval] "
        "and the signed value where it is negative; `profile.csv` of `lmscope eval profile` has both with "
        "their intervals.",
        "",
        "## Case 1: a model that memorized the static benchmark",
        "",
        "The *memorizer* answers the 1,000 queries of the public question-formation benchmark exactly and "
        "uses the linear rule (front the first auxiliary) elsewhere: right on every in-distribution sentence, "
        "wrong on every sentence with a relative clause on the subject (the `gen` split, a quarter of the "
        "query distribution). Evaluators get 32 ground-truth samples and 2 rounds × 2 queries; "
        f"{args.games} games each.",
        "",
        "    lmscope eval game --capability question-formation --model memorizer --evaluator static \\",
        "        --samples 32 --rounds 2 --queries 2 --games 200",
        "",
        md_table(["evaluator", "advantage", "95% CI (bootstrap)", "signed", "95% CI (Wilson)",
                  "P(says model, facing g)", "P(says model, facing μ)", "games"],
                 [[ev] + fmt(s) for ev, s in case1.items()]),
        "",
        "Advantage against the sample budget (2 rounds × 2 queries; the static benchmark's size is its "
        "sample budget):",
        "",
        "    lmscope eval profile --capability question-formation --model memorizer \\",
        "        --evaluator static,fresh,adaptive,discriminator --values 4,8,16,32,64,128 --rounds 2 --queries 2 \\",
        "        --games 200 --out runs/pseudointelligence/case1-cli",
        "",
        piv(prof1.table),
        "",
        "![memorizer profile](figures/pseudointelligence/memorizer-profile.png)",
        "",
        "## Case 2: the profile of SmolLM2-135M and of a small transformer",
        "",
        f"The small transformer: `lmscope grok train --task question-formation --layers 2 --steps {args.steps} "
        f"--lr 5e-4 --batch-size 16 --n-train 2000 --eval-every 1000 --ckpt-every 1000 --sample-size 200 "
        f"--tree-sample 0 --out {runs}/small-qf-l2` "
        f"(d = 64, {timings['training'] / 60:.1f} min here, resumed if present); the last evaluation row: "
        f"first-word accuracy in distribution {small_train['last_metrics'].get('id_acc')}, on the "
        f"generalization split {small_train['last_metrics'].get('gen_acc')}. SmolLM2-135M-Instruct answers a "
        "4-shot prompt greedily (first line of the completion).",
        "",
        "The capability here is `question-formation-aux`: the same queries, a response judged by the "
        "auxiliary its question starts with (do/does/don't/doesn't), the metric of the grokking papers. "
        "Judged on the whole question both models are wrong most of the time and every evaluator catches "
        "them at once (exact match below); the first word is where they are partly right, so where the "
        "evaluators differ.",
        "",
        "Accuracy of each model on fresh queries (what an evaluator can find):",
        "",
        md_table(["model", "first word, in-distribution", "first word, gen (relative clause on the subject)",
                  "exact question, in-distribution", "exact question, gen"],
                 [[m] + [f"{100 * r[s][i]:.0f} % (n = {r[s][2]})" for i in (0, 1) for s in ("id", "gen")]
                  for m, r in acc.items()]),
        "",
        "Advantage of fresh, adaptive and discriminator evaluators (2 rounds × 2 queries) as their sample "
        f"budget grows; {args.small_games} games per point for the small transformer, {args.lm_games} for "
        "SmolLM2 (its answers are slow on CPU):",
        "",
        f"    lmscope eval profile --capability question-formation-aux --model small:{runs}/small-qf-l2 \\",
        "        --evaluator fresh,adaptive,discriminator --values 4,8,16,32,64,128 --rounds 2 --queries 2 \\",
        f"        --games {args.small_games} --out runs/pseudointelligence/case2-cli",
        "    lmscope eval profile --capability question-formation-aux --model lm --lm local:smollm2-135m \\",
        "        --evaluator fresh,adaptive,discriminator --values 4,8,16,32 --rounds 2 --queries 2 \\",
        f"        --games {args.lm_games} --out runs/pseudointelligence/case2-lm-cli",
        "",
        piv(pd.concat([small.table, smol.table], ignore_index=True)),
        "",
        "![profile](figures/pseudointelligence/profile.png)",
        "",
        "The LM's prompt (the query last):",
        "",
        "    " + example.replace("\n", "\n    "),
        "",
    ]
    if cache is not None:
        lines += [f"LM cache for this run: {cache.hits} answers from the cache, {cache.misses} computed.", ""]
    lines += ["Timings here: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".", "",
              "## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
