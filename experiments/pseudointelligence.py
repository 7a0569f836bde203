"""Pseudointelligence at CPU scale: two case studies of evaluation as a distinguishing game.

1. A model that memorized a static benchmark (exact on its 1,000 public question-formation queries,
   the linear rule elsewhere) against the static benchmark and against learned evaluators, at one
   budget (several game seeds) and as the evaluator's sample budget grows.
2. The pseudointelligence profile (advantage vs the evaluator's sample budget) of small transformers
   trained by ``lmscope grok train`` on question formation (one per training seed) and of the bundled
   SmolLM2-135M-Instruct (few-shot, greedy), judged by the auxiliary the question starts with
   (``question-formation-aux``, the metric of the grokking papers).

Both cases run the adaptive evaluator as handed (the capability's own query categories, which are the
generalization split itself, and probes of the model before the game) and its ablations: categories
shuffled among its queries or none at all, and no pre-game probes.

Every game is kept in a JSONL transcript under --runs (gitignored; each replays with
``lmscope eval game --replay FILE``); the small transformers are trained there too (resumably, on
one CPU thread: their weights depend on the thread count), and the LM's answers are kept in
lmscope's LM cache, so a rerun costs only the games.

    PYTHONPATH=src .venv/bin/python experiments/pseudointelligence.py      # case 1 ~6 min; case 2 hours
    PYTHONPATH=src .venv/bin/python experiments/pseudointelligence.py --case1-only
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
from lmscope.evaluation.evaluators import AdaptiveEvaluator, make_evaluator  # noqa: E402
from lmscope.evaluation.game import wilson  # noqa: E402
from lmscope.evaluation.oracles import Memo  # noqa: E402
from lmscope.report.plots import plot_profile  # noqa: E402

CAP = "question-formation"
CAP2 = "question-formation-aux"  # case 2: judged by the first word of the question
# the adaptive evaluator as handed (full taxonomy, probes) and its ablations
ADAPTIVE = [AdaptiveEvaluator(taxonomy=t, probe=p) for p in (True, False) for t in ("full", "shuffled", "none")]
CASE1_EVALUATORS = [make_evaluator("static"), make_evaluator("fresh"), *ADAPTIVE, make_evaluator("discriminator"),
                    make_evaluator("self")]
PROFILE_EVALUATORS = [make_evaluator("fresh"), *ADAPTIVE, make_evaluator("discriminator")]
SEED_EVALUATORS = [make_evaluator("fresh"), *ADAPTIVE]
SAMPLES = [4, 8, 16, 32, 64, 128]
TRAIN = dict(layers=2, steps=10000, lr=5e-4, batch_size=16, eval_every=1000, ckpt_every=1000, n_train=2000,
             sample_size=200, tree_sample=0, n_test=0, weight_decay=0.0)


def fmt(s: dict) -> list[str]:
    return [f"{s['advantage']:.2f}", f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]",
            f"{s['signed_advantage']:+.2f}", f"[{s['signed_ci_low']:+.2f}, {s['signed_ci_high']:+.2f}]",
            f"{s['p_model_given_model']:.2f}", f"{s['p_model_given_truth']:.2f}", str(s["n"])]


def train_small(run: Path, steps: int, seed: int, log, stop_at: int | None = None) -> dict:
    from lmscope.grokking import grok_train

    t0 = time.time()
    res = grok_train(CAP, run, **{**TRAIN, "steps": steps}, seed=seed, quiet=True, stop_after=stop_at)
    log(f"small transformer seed {seed}: step {res['step']} in {time.time() - t0:.0f} s, "
        f"last metrics {res['last_metrics']}")
    return res


def accuracy(cap, cap2, first, whole, n: int, seed: int = 99) -> dict:
    """Per split (id, gen): first-word and exact-question accuracy, and how often the first word is the
    sentence's first auxiliary (what the linear rule fronts), on n fresh queries."""
    import numpy as np

    rng = np.random.default_rng(seed)
    row = {}
    for split in ("id", "gen"):
        qs = cap.sample_queries(rng, n, split)
        a1 = first.respond(qs)
        a2 = a1 if whole is first else whole.respond(qs)
        row[split] = {"first": sum(cap2.is_correct(q, a) for q, a in zip(qs, a1)),
                      "exact": sum(cap.is_correct(q, a) for q, a in zip(qs, a2)),
                      "first_aux": sum(cap2.normalize(a) == cap2.heuristic(q) for q, a in zip(qs, a1)), "n": n}
    return row


def seed_table(cap, oracle, label, evaluators, res, games, seeds, folder, log) -> dict:
    """{evaluator label: {seed: stats}}: the same point rerun with other game seeds."""
    out: dict = {}
    for ev in evaluators:
        for s in seeds:
            r = play_games(cap, oracle, ev, res, games, seed=s, quiet=True,
                           transcript=folder / f"{label}__{ev.label}__s{res.samples}-r{res.rounds}-"
                                               f"q{res.queries_per_round}__seed{s}.jsonl")
            out.setdefault(ev.label, {})[s] = r.stats()
        log(f"{label} / {ev.label}: " + ", ".join(f"seed {s} {v['advantage']:.2f}" for s, v in out[ev.label].items()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/pseudointelligence", help="transcripts and the small runs")
    ap.add_argument("--doc", default="docs/results/pseudointelligence.md")
    ap.add_argument("--games", type=int, default=200, help="games per point of case 1 (default 200)")
    ap.add_argument("--small-games", type=int, default=60, help="games per point, small transformer (default 60)")
    ap.add_argument("--lm-games", type=int, default=20, help="games per point, SmolLM2 (default 20)")
    ap.add_argument("--steps", type=int, default=TRAIN["steps"], help="training steps of the small transformers")
    ap.add_argument("--stop-at", type=int, default=None,
                    help="train the small transformers only to this step of their --steps schedule (resumable "
                         "later; a multiple of the checkpoint interval, 1000)")
    ap.add_argument("--train-seeds", default="0,1", help="training seeds of the small transformers (default 0,1)")
    ap.add_argument("--seeds", default="0,1,2", help="game seeds of the seed tables (default 0,1,2)")
    ap.add_argument("--small-seeds", default=None, help="game seeds of case 2's seed table (default: --seeds)")
    ap.add_argument("--small-values", default=",".join(map(str, SAMPLES)),
                    help="sample budgets of case 2's profiles (default 4,8,16,32,64,128)")
    ap.add_argument("--lm", default="local:smollm2-135m")
    ap.add_argument("--no-lm", action="store_true", help="leave SmolLM2 out (the page says so)")
    ap.add_argument("--case1-only", action="store_true",
                    help="run case 1 only; the page says that case 2 was not rerun")
    args = ap.parse_args(argv)
    runs, doc = Path(args.runs), Path(args.doc)
    figs = doc.parent / "figures" / "pseudointelligence"
    figs.mkdir(parents=True, exist_ok=True)
    train_seeds = [int(v) for v in args.train_seeds.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    small_seeds = [int(v) for v in (args.small_seeds or args.seeds).split(",")]
    small_values = [int(v) for v in args.small_values.split(",")]

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
        r = play_games(cap, mem, ev, base, args.games, seed=0, quiet=True,
                       transcript=runs / "case1" / f"memorizer__{ev.label}__s32-r2-q2.jsonl")
        case1[ev.label] = r.stats()
        log(f"case 1: {ev.label}: {case1[ev.label]['advantage']:.3f} (signed {case1[ev.label]['signed_advantage']:+.3f})")
    seeds1 = seed_table(cap, mem, "memorizer", SEED_EVALUATORS, base, args.games, seeds, runs / "case1-seeds", log)
    prof1 = profile(cap, {"memorizer": mem}, [make_evaluator("static"), *PROFILE_EVALUATORS], "samples", SAMPLES,
                    Resources(4, 2, 2), args.games, seed=0, transcripts=runs / "case1-profile", quiet=True, log=log)
    plot_profile(prof1.table, figs / "memorizer-profile.png", "samples",
                 "Memorizer of the static benchmark (question formation, 2 rounds x 2 queries)")
    timings["case 1"] = time.time() - t0

    if args.case1_only:
        write_doc(doc, args, case1, seeds1, prof1, None, {}, {}, {}, timings, None, None, runs, seeds, [])
        print(f"wrote {doc}")
        return 0

    # ---------------------------------------------------------------- case 2: small transformers and SmolLM2
    import torch

    torch.set_num_threads(1)  # the small transformers' weights depend on the thread count (float sum order)
    t0 = time.time()
    trained, smalls = {}, {}
    for s in train_seeds:
        run = runs / f"small-qf-l2-seed{s}"
        trained[s] = train_small(run, args.steps, s, log, stop_at=args.stop_at)
        smalls[s] = (f"small transformer (seed {s})", run)
    timings["training"] = time.time() - t0
    t0 = time.time()
    tables, seeds2, acc = [], {}, {}
    for s, (name, run) in smalls.items():
        oracle = Memo(make_oracle(f"small:{run}", cap2))
        tables.append(profile(cap2, {name: oracle}, PROFILE_EVALUATORS, "samples", small_values, Resources(4, 2, 2),
                              args.small_games, seed=0, transcripts=runs / f"case2-small-seed{s}", quiet=True,
                              log=log).table)
        seeds2[name] = seed_table(cap2, oracle, f"small-seed{s}", SEED_EVALUATORS, base, args.small_games, small_seeds,
                                  runs / "case2-seeds", log)
        acc[name] = accuracy(cap, cap2, oracle, oracle, 400)
    timings["small profiles"] = time.time() - t0
    smol, cache, example = None, None, None
    if not args.no_lm:
        t0 = time.time()
        from lmscope.lm import open_lm

        lm = open_lm(args.lm)
        lm_oracle = make_oracle("lm", cap2, lm_factory=lambda spec: lm)
        lm_full = make_oracle("lm", cap, lm_factory=lambda spec: lm)  # the whole question, for exact match
        try:
            smol = profile(cap2, {"SmolLM2-135M (4-shot)": lm_oracle}, PROFILE_EVALUATORS, "samples", [4, 8, 16, 32],
                           Resources(4, 2, 2), args.lm_games, seed=0, transcripts=runs / "case2-lm", quiet=True,
                           log=log)
            acc["SmolLM2-135M (4-shot)"] = accuracy(cap, cap2, lm_oracle, lm_full, 40)
            cache = getattr(lm, "stats", None)
            example = lm_oracle.prompt("the yak doesn't sleep")
        finally:
            lm.close()
        timings["LM profile"] = time.time() - t0
    first = tables[0]
    plot_profile(first[first["evaluator"].isin(["fresh", "adaptive", "adaptive-none", "adaptive-shuffled",
                                                 "adaptive-noprobe", "discriminator"])],
                 figs / "profile.png", "samples",
                 f"{smalls[train_seeds[0]][0]}, question formation, first word (2 rounds x 2 queries)")
    both = pd.concat(tables + ([smol.table] if smol is not None else []), ignore_index=True)
    write_doc(doc, args, case1, seeds1, prof1, both, seeds2, acc, trained, timings, cache, example, runs, seeds,
              small_seeds)
    print(f"wrote {doc}")
    return 0


SETUP = [
    ("capability μ", "question formation of the grammar in `lmscope.data` (its ground truth computed from the "
     "gold tree); case 2 judges the first word only", "a distribution or oracle over queries and responses", "-"),
    ("generalization queries", "`gen`: a relative clause on the subject whose auxiliary differs from the main one "
     "(the grokking suite's gen split), a quarter of the queries", "-", "our instance"),
    ("model g", "a planted memorizer; 2-layer transformers (d = 64, 10k steps, 2,000 training sentences); "
     "SmolLM2-135M 4-shot", "any model", "scale: CPU-sized models (the framework names none)"),
    ("evaluator learner", "static, fresh, adaptive, discriminator, self; bounded by ground-truth samples and "
     "rounds × queries", "learns from samples of μ, then interacts with g or μ (hidden fair coin) for up to r "
     "rounds, bounded resources", "-"),
    ("what the learner may see of g before the game", "adaptive and discriminator probe g with half their "
     "samples; ablation `--no-probe`: nothing", "samples of μ only", "design: probing g is ours; the "
     "no-probe rows follow the framework"),
    ("query categories", "adaptive: the capability's kinds (`subj-rc` = the gen split); ablations: labels "
     "shuffled among its queries, or none (a logistic regression on the words of answered queries)",
     "none given", "design: the full taxonomy hands the evaluator the rule; the `none` rows follow the "
     "framework"),
    ("coin", "fair, in pairs of opposite coins (seeded order)", "fair coin", "design, variance only: a constant "
     "guess scores exactly 0"),
    ("advantage", "\\|P(says model \\| g) − P(says model \\| μ)\\|, 95 % bootstrap interval over coin pairs; signed "
     "value beside it", "the same definition; no estimator", "an interval is ours"),
    ("pseudointelligence claim", "the advantage of each evaluator we run (a lower bound on the class's best)",
     "(ε, 𝓔)-pseudointelligent: no evaluator in 𝓔 beats ε", "scale: a handful of evaluators, not the "
     "supremum over a class"),
    ("experiments", "the two cases below", "none (a conceptual paper; it reasons about case studies and "
     "existing evaluations)", "-"),
]


def write_doc(doc, args, case1, seeds1, prof1, table2, seeds2, acc, trained, timings, cache, example, runs,
              seeds, small_seeds) -> None:
    def cell(s):
        text = f"{s['advantage']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"
        return text + (f" (signed {s['signed_advantage']:+.2f})" if s["signed_advantage"] < 0 else "")

    def piv(table):
        """Per cell: the advantage [its bootstrap interval], and the signed value when it is negative."""
        cols = sorted(set(table["value"]))
        rows = []
        for (m, e), g in table.groupby(["model", "evaluator"], sort=False):
            by = {int(r["value"]): r for _, r in g.iterrows()}
            rows.append([m, e] + [cell(by[c]) if c in by else "–" for c in cols])
        return md_table(["model", "evaluator"] + [f"samples {c}" for c in cols], rows)

    def seed_rows(label, table):
        return [[label, e] + [cell(v) for v in by.values()] for e, by in table.items()]

    def pct(k, n):
        lo, hi = wilson(k, n)
        return f"{100 * k / n:.0f} % [{100 * lo:.0f}, {100 * hi:.0f}]"

    small_values = sorted(set(int(v) for v in table2["value"])) if table2 is not None else SAMPLES
    cmd = "PYTHONPATH=src .venv/bin/python experiments/pseudointelligence.py"
    ran = " ".join([cmd] + (["--case1-only"] if args.case1_only else []) + (["--no-lm"] if args.no_lm else [])
                   + ([f"--stop-at {args.stop_at}"] if args.stop_at else [])
                   + ([f"--train-seeds {args.train_seeds}"] if args.train_seeds != "0,1" else [])
                   + ([f"--small-games {args.small_games}"] if args.small_games != 60 else [])
                   + ([f"--small-values {args.small_values}"] if small_values != SAMPLES else [])
                   + ([f"--small-seeds {args.small_seeds}"] if args.small_seeds else []))
    t = TRAIN | {"steps": args.steps}
    train_cmd = (f"lmscope grok train --task question-formation --layers {t['layers']} --steps {t['steps']} "
                 f"--lr {t['lr']} --batch-size {t['batch_size']} --n-train {t['n_train']} --eval-every "
                 f"{t['eval_every']} --ckpt-every {t['ckpt_every']} --sample-size {t['sample_size']} --tree-sample "
                 f"{t['tree_sample']} --n-test {t['n_test']} --weight-decay {t['weight_decay']} --seed S "
                 f"--out {runs}/small-qf-l2-seedS")
    lines = [
        "# Pseudointelligence: evaluation as a distinguishing game",
        "",
        "Paper: Murty, Paradise, Sharma, *Pseudointelligence: A Unifying Framework for Language Model "
        "Evaluation* (Findings of EMNLP 2023). A model g is compared with a capability μ by an evaluator "
        "learner with bounded resources. A hidden fair coin picks g or μ; the evaluator asks its queries, sees "
        "the answers and guesses which it faced. Advantage = |P(says model | g) − P(says model | μ)|, as the "
        "paper defines it (0: cannot tell them apart; 1: always can, whichever way round it guesses); the "
        "signed value P(says model | g) − P(says model | μ) = 2 P(correct) − 1 is shown beside it (negative: "
        "the evaluator takes μ for the model). The paper is conceptual (no experiments): the \"paper\" column "
        "below is its framework's definitions, and the two cases are its framework run as software "
        "(`lmscope.evaluation`), case 1 on its reading of static benchmarks (a fixed, non-learning evaluator "
        "that a model can pass by memorization).",
        "",
        "## Setup against the framework",
        "",
        md_table(["", "ours", "paper (framework)", "why different"], [list(r) for r in SETUP]),
        "",
        "Differences marked *design* are ours and are ablated on this page (the adaptive evaluator without "
        "its categories or its probes); *scale* marks what a CPU run cannot match.",
        "",
        f"Regenerate everything: `{cmd}` (case 1 takes ~6 min on 2 shared CPU cores; case 2 trains the small "
        "transformers, 10,000 steps each (about 2 min each on one thread), plays their games and runs SmolLM2 "
        "(about 3 min, its answers cached); games replay from their transcripts when rerun). "
        f"This revision ran `{ran}` ({sum(timings.values()) / 60:.1f} min here). Transcripts of every "
        f"game are written under `{runs}/` (gitignored); each replays without the model, e.g. "
        f"`lmscope eval game --replay {runs}/case1/memorizer__static__s32-r2-q2.jsonl`. The small "
        "transformers are trained on one CPU thread (`torch.set_num_threads(1)` in the script): their "
        "weights, and so their accuracy, depend on the thread count (below).",
        "",
        "Games come in pairs with opposite coins (seeded order), so an evaluator that always gives the same "
        "answer scores exactly 0. The interval of the advantage is a 95 % percentile bootstrap over whole coin "
        f"pairs ({BOOTSTRAP_RESAMPLES} resamples, seeded by the game seed) of the signed difference, folded "
        "through |·| (it starts at 0 when the signed interval holds 0; `lmscope.evaluation.abs_advantage_interval`); "
        "when every pair gave the same result it has width 0, and the Wilson 95 % interval of P(correct), mapped "
        "to the signed value, shows the sampling uncertainty. Tables show the advantage [its interval] and the "
        "signed value where it is negative; `profile.csv` of `lmscope eval profile` has both with their "
        "intervals.",
        "",
        "The adaptive evaluator and its ablations (`lmscope eval game|profile --evaluator adaptive "
        "[--taxonomy full|shuffled|none] [--no-probe]`): `adaptive` files queries under the capability's kinds "
        "(`subj-none`, `subj-pp`, `subj-rc`; `subj-rc` is exactly the gen split) and probes g with half the "
        "samples it does not need for the game; `-shuffled` permutes those labels among its sampled queries "
        "(seeded: the same names and sizes, no information); `-none` is given no categories and ranks "
        "unused queries by a logistic regression on the words (and words at positions) of the queries it saw "
        "answered; `-noprobe` asks g nothing before the game and learns only from the game's answers.",
        "",
        "## Case 1: a model that memorized the static benchmark",
        "",
        "The *memorizer* answers the 1,000 queries of the public question-formation benchmark exactly and "
        "uses the linear rule (front the first auxiliary) elsewhere: right on every in-distribution sentence, "
        "wrong on every gen sentence (a relative clause on the subject, a quarter of the query distribution). "
        f"Evaluators get 32 ground-truth samples and 2 rounds × 2 queries; {args.games} games each, seed 0.",
        "",
        "    lmscope eval game --capability question-formation --model memorizer --evaluator adaptive \\",
        "        [--taxonomy none|shuffled] [--no-probe] --samples 32 --rounds 2 --queries 2 --games 200",
        "",
        md_table(["evaluator", "advantage", "95% CI (bootstrap)", "signed", "95% CI (Wilson)",
                  "P(says model, facing g)", "P(says model, facing μ)", "games"],
                 [[ev] + fmt(s) for ev, s in case1.items()]),
        "",
        f"The same point rerun with game seeds {', '.join(map(str, seeds))} ({args.games} games each):",
        "",
        md_table(["model", "evaluator"] + [f"seed {s}" for s in seeds], seed_rows("memorizer", seeds1)),
        "",
        "Advantage against the sample budget (2 rounds × 2 queries; the static benchmark's size is its "
        f"sample budget; {args.games} games a point, seed 0):",
        "",
        "    lmscope eval profile --capability question-formation --model memorizer \\",
        "        --evaluator static,fresh,adaptive,discriminator --values 4,8,16,32,64,128 --rounds 2 --queries 2 \\",
        "        --games 200 --out runs/pseudointelligence/case1-cli   # add --taxonomy / --no-probe for the ablations",
        "",
        piv(prof1.table),
        "",
        "![memorizer profile](figures/pseudointelligence/memorizer-profile.png)",
        "",
    ]
    if table2 is None:
        lines += [
            "## Case 2: small transformers (and SmolLM2-135M) on the first word",
            "",
            "Not rerun in this revision (`--case1-only`): the machine's CPU went to a training sweep with "
            "priority, and case 2 needs the small transformers retrained on the new gen split (the previous "
            "revision's figures, on the previous gen split and without the ablations, are quoted in the "
            "reading, with what the retraining measured before it was stopped). "
            f"`{cmd}` runs it: one small transformer per training seed (`{train_cmd}`), the profile of fresh, "
            "adaptive (with its ablations) and discriminator evaluators against each, a game-seed table at 32 "
            "samples, first-word accuracy on id and gen with Wilson intervals, and SmolLM2-135M unless `--no-lm`.",
            "",
        ]
    else:
        lines += [
            "## Case 2: small transformers (and SmolLM2-135M) on the first word",
            "",
            f"The small transformers, one per training seed: `{train_cmd}` (d = 64, {timings['training'] / 60:.1f} "
            "min here for all of them, resumed if present)"
            + (f"; this revision trained them only to step {args.stop_at} of that schedule (`--stop-at "
               f"{args.stop_at}`: CPU time on a machine shared with a training sweep), the checkpoint the games use"
               if args.stop_at else "")
            + ". Their last evaluation rows (200 rows per split): "
            + "; ".join(f"seed {s}: first-word accuracy in distribution {r['last_metrics'].get('id_acc')}, on the "
                        f"gen split {r['last_metrics'].get('gen_acc')}, fronts the first auxiliary on gen "
                        f"{r['last_metrics'].get('gen_first_aux')}" for s, r in trained.items()) + ".",
            "",
            "The capability here is `question-formation-aux`: the same queries, a response judged by the "
            "auxiliary its question starts with (do/does/don't/doesn't), the metric of the grokking papers. On "
            "the gen split the first auxiliary of the sentence is never the right one, so the linear rule scores 0 "
            "there and a model that is right on gen has not learned it.",
            "",
            "Accuracy on fresh queries (what an evaluator can find), with Wilson 95 % intervals:",
            "",
            md_table(["model", "first word, id", "first word, gen", "fronts the first auxiliary, gen",
                      "exact question, id", "exact question, gen", "n per split"],
                     [[m, pct(r["id"]["first"], r["id"]["n"]), pct(r["gen"]["first"], r["gen"]["n"]),
                       pct(r["gen"]["first_aux"], r["gen"]["n"]), pct(r["id"]["exact"], r["id"]["n"]),
                       pct(r["gen"]["exact"], r["gen"]["n"]), r["id"]["n"]] for m, r in acc.items()]),
            "",
            f"Advantage as the sample budget grows (2 rounds × 2 queries; {args.small_games} games a point for the "
            f"small transformers, {args.lm_games} for SmolLM2; seed 0):",
            "",
            f"    lmscope eval profile --capability question-formation-aux --model small:{runs}/small-qf-l2-seed0 \\",
            f"        --evaluator fresh,adaptive,discriminator --values {','.join(map(str, small_values))} --rounds 2 "
            "--queries 2 \\",
            f"        --games {args.small_games} --out runs/pseudointelligence/case2-cli   # --taxonomy / --no-probe",
            "",
            piv(table2),
            "",
            "![profile](figures/pseudointelligence/profile.png)",
            "",
            f"At 32 samples, rerun with game seeds {', '.join(map(str, small_seeds))} ({args.small_games} games each):",
            "",
            md_table(["model", "evaluator"] + [f"seed {s}" for s in small_seeds],
                     [row for name, tab in seeds2.items() for row in seed_rows(name, tab)]),
            "",
        ]
    if table2 is None:
        pass
    elif example is not None:
        lines += ["The LM's prompt (the query last):", "", "    " + example.replace("\n", "\n    "), ""]
    else:
        lines += ["SmolLM2-135M was not rerun in this revision (`--no-lm`: ~25 min of CPU); its figures from "
                  "the previous revision, on the previous gen split and without the ablations, are quoted in "
                  "the reading.", ""]
    if cache is not None:
        lines += [f"LM cache for this run: {cache.hits} answers from the cache, {cache.misses} computed.", ""]
    lines += ["Timings here: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".", "",
              "## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
