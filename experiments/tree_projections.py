"""Tree projections of the bundled real models on grammar sentences with gold trees, per layer.

Sentences: declaratives from the question-formation and tense-inflection grammars (their gold binary
trees come with them), drawn with a seed. For each model, the span-masked charts are computed once
per sentence and read at every layer; the page reports per layer the corpus t-score and the parsing
F1 against the gold trees, next to left-branching, right-branching, balanced and random trees.

    .venv/bin/python experiments/tree_projections.py                # 300 sentences, both models
    .venv/bin/python experiments/tree_projections.py --n 60         # quicker

Writes docs/results/tree-projections.md (or --doc) and its figures; report folders go to --runs.
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

from _doc import md_table, write_keeping_reading  # noqa: E402

from lmscope._io import atomic_dir  # noqa: E402
from lmscope.data.suites import gold_sentences  # noqa: E402
from lmscope.report.html import Report  # noqa: E402
from lmscope.report.plots import plot_sci_chart, plot_tree  # noqa: E402
from lmscope.report.sections import tree_layers_section  # noqa: E402
from lmscope.trees import tree_projection  # noqa: E402

MODELS = {"smollm2-135m": [3, 6, 9, 12, 15, 18, 21, 24, 27, 30], "minilm-l6": [1, 2, 3, 4, 5, 6]}


def sentences(n: int, seed: int):
    """``n`` distinct declaratives with gold trees, half from each grammar."""
    words, trees = [], []
    for suite in ("question-formation", "tense-inflection"):
        w, t = gold_sentences(suite, n // 2 + n % 2 * (suite == "question-formation"), seed=seed, pool=4 * n)
        words += w
        trees += t
    return words, trees


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="sentences (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/trees")
    ap.add_argument("--doc", default="docs/results/tree-projections.md")
    args = ap.parse_args(argv)
    doc, runs = Path(args.doc), Path(args.runs)
    figs = doc.parent / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    words, golds = sentences(args.n, args.seed)
    lengths = [len(w) for w in words]
    results = {}
    for model, layers in MODELS.items():
        t0 = time.time()
        print(f"== {model}: {len(words)} sentences, layers {layers}", flush=True)
        sweep = tree_projection(model, words, gold_trees=golds, layer=layers, seed=args.seed)
        results[model] = (sweep, time.time() - t0)
        print("\n".join(sweep.summary_lines()), f"({time.time() - t0:.0f} s)", flush=True)
        with atomic_dir(runs / model) as tmp:
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
    write_doc(doc, args, words, lengths, results)
    print(f"wrote {doc}")
    return 0


def write_doc(doc: Path, args, words, lengths, results) -> None:
    lines = [
        "# Tree projections of SmolLM2-135M and MiniLM",
        "",
        "*Characterizing Intrinsic Compositionality in Transformers with Tree Projections* (Murty, Sharma, "
        "Andreas & Manning, 2023) measures how tree-like a transformer's computation is: for every span, "
        "the distance between the span's vector in context and its vector when attention cannot see outside "
        "it, then the tree that best fits those distances (the tree projection), its t-score, and its parsing "
        "F1 against gold trees.",
        "",
        "Regenerate this page:",
        "",
        "```",
        "PYTHONPATH=src .venv/bin/python experiments/tree_projections.py" + (f" --n {args.n}" if args.n != 300 else ""),
        "```",
        "",
        f"Sentences: {len(words)} declaratives from the question-formation and tense-inflection grammars "
        f"(`lmscope data make`, validation split, seed {args.seed}), {min(lengths)}–{max(lengths)} words "
        f"(mean {sum(lengths) / len(lengths):.1f}), each with its gold binary tree. Span mask from block 0 "
        "(every layer), cosine distance, vectors read after the given block (layer L = output of block L). "
        "One masked pass per span start for the causal SmolLM2, one per span for the MiniLM encoder; the "
        "same passes serve every layer.",
        "",
        "The CLI equivalent for one layer:",
        "",
        "```",
        "lmscope data make question-formation --out qf --n-train 0 --n-val 300 --n-gen 0",
        "lmscope trees smollm2-135m --data qf/val.jsonl --limit 150 --out runs/trees-smollm2",
        "```",
        "",
    ]
    for model, (sweep, secs) in results.items():
        t = sweep.table()
        base_cols = [c for c in t.columns if c.startswith("f1_")]
        lines += [f"## {model}", "",
                  md_table(["layer", "t-score", "F1", *[c.removeprefix("f1_") + " F1" for c in base_cols]],
                           [[int(r["layer"]), f"{r['t_score']:.4f}", f"{100 * r['f1']:.1f}",
                             *[f"{100 * r[c]:.1f}" for c in base_cols]] for _, r in t.iterrows()]),
                  "",
                  f"({secs:.0f} s on this machine.) Chart and induced tree of one sentence at the last layer "
                  "(gold brackets in green where matched):", "",
                  f"![chart](figures/trees-{model}-chart.png) ![tree](figures/trees-{model}-tree.png)", ""]
    lines += ["## Reading", "", "READING_PLACEHOLDER", ""]
    write_keeping_reading(doc, "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
