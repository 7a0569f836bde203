"""Tree projections: the fast SCI-chart procedure against the reference one, same model and sentences.

Reference (as the paper's code runs it): for every sentence, one ordinary pass and one masked pass per
span, 1 + n(n+1)/2 forward passes of one sequence each. lmscope's fast procedure: for a causal LM,
one masked pass per span start (the pass with keys before word i hidden gives every span (i, j) at
once, exactly), and all passes of all sentences batched with right padding.

Sentences come from the grammar suites (question formation and tense inflection declaratives, with
their gold trees); lengths are spread over 8..25 words, and a length no single declarative has is
made of two joined by "and" (gold tree ``(S1 (and S2))``). Both procedures run on the same model, with
the same threads, in one process; the charts must agree (max |difference| below 1e-4) and give the
same trees.

    .venv/bin/python benchmarks/bench_trees.py                # full: 12 sentences (8-25 words) on smollm2-135m
    .venv/bin/python benchmarks/bench_trees.py --size small   # a quick smoke run (3 sentences)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import command_line, machine_info, table, write_result

from lmscope.data.suites import make_suite
from lmscope.data.trees import leaves, parse_bracketed
from lmscope.trees import load_adapter
from lmscope.trees.chart import compute_charts
from lmscope.trees.decode import bracket_match, decode, prf, sentence_rng, t_score

SIZES = {"small": 3, "full": 12}
MIN_WORDS, MAX_WORDS = 8, 25


def suite_trees(seed: int) -> dict[int, list]:
    """Gold trees of the grammar suites' declaratives, by number of words."""
    by_len: dict[int, list] = {}
    for name in ("question-formation", "tense-inflection"):
        for row in make_suite(name, 300, 0, 300, seed=seed):
            tree = parse_bracketed(row["tree"])
            by_len.setdefault(len(leaves(tree)), []).append(tree)
    return by_len


def pick_sentences(n: int, seed: int) -> list:
    """``n`` gold trees whose lengths spread evenly over MIN_WORDS..MAX_WORDS (seeded choices)."""
    by_len = suite_trees(seed)
    rng = np.random.default_rng(seed)
    targets = np.linspace(MIN_WORDS, MAX_WORDS, n).round().astype(int) if n > 1 else np.array([MIN_WORDS])
    out = []
    for length in targets:
        if by_len.get(length):
            pool = by_len[length]
            out.append(pool[int(rng.integers(len(pool)))])
            continue
        pairs = [(a, length - 1 - a) for a in sorted(by_len) if by_len.get(length - 1 - a)]
        a, b = pairs[int(rng.integers(len(pairs)))]
        left = by_len[a][int(rng.integers(len(by_len[a])))]
        right = by_len[b][int(rng.integers(len(by_len[b])))]
        out.append((left, ("and", right)))
    return out


def trees_and_scores(charts: list[np.ndarray], words: list[list[str]], seed: int):
    trees, scores = [], []
    for k, (chart, ws) in enumerate(zip(charts, words, strict=True)):
        tree, nodes = decode(chart, ws)
        trees.append(tree)
        scores.append(t_score(chart, nodes, sentence_rng(seed, k, 0)))
    return trees, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    golds = pick_sentences(SIZES[args.size], args.seed)
    words = [leaves(t) for t in golds]
    adapter = load_adapter(args.model)
    if not adapter.causal:
        raise SystemExit(f"{args.model} is not a causal LM; this benchmark measures the causal fast procedure")
    encs = [adapter.encode_checked(ws, where=f"sentence {k}") for k, ws in enumerate(words)]
    layer = adapter.n_layers
    lengths = [len(w) for w in words]
    print(f"{len(words)} sentences of {min(lengths)}..{max(lengths)} words on {args.model} (layer {layer}), "
          f"{args.threads} threads", flush=True)
    compute_charts(adapter, encs[:1], [layer], fast=True, quiet=True)  # warm-up, untimed

    t0 = time.perf_counter()
    fast, fs = compute_charts(adapter, encs, [layer], fast=True, batch_size=args.batch_size, quiet=True)
    t_fast = time.perf_counter() - t0
    print(f"fast: {t_fast:.1f} s, {fs.passes} passes in {fs.forward_calls} batched calls", flush=True)
    t0 = time.perf_counter()
    ref, rs = compute_charts(adapter, encs, [layer], fast=False, quiet=True)
    t_ref = time.perf_counter() - t0
    print(f"reference: {t_ref:.1f} s, {rs.passes} passes", flush=True)

    max_diff = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(fast[layer], ref[layer], strict=True))
    trees_fast, scores_fast = trees_and_scores(fast[layer], words, args.seed)
    trees_ref, scores_ref = trees_and_scores(ref[layer], words, args.seed)
    same_trees = sum(a == b for a, b in zip(trees_fast, trees_ref, strict=True))
    equal = max_diff < 1e-4 and same_trees == len(words)
    speedup = t_ref / t_fast
    f1 = prf([bracket_match(t, g) for t, g in zip(trees_fast, golds, strict=True)])["f1"]
    print(f"speed-up {speedup:.1f}x; max |chart diff| {max_diff:.2e}; identical trees {same_trees}/{len(words)}: "
          f"{'identical' if equal else 'DIFFERENT'}")

    header = ["procedure", "sentences", "forward passes", "batched calls", "padded tokens", "seconds",
              "sentences / s"]
    trows = [["reference (one pass per span, one at a time)", len(words), rs.passes, rs.forward_calls,
              rs.padded_tokens, f"{t_ref:.1f}", f"{len(words) / t_ref:.3f}"],
             ["lmscope fast (one pass per start, batched)", len(words), fs.passes, fs.forward_calls,
              fs.padded_tokens, f"{t_fast:.1f}", f"{len(words) / t_fast:.3f}"]]
    print(table(trows, header))
    payload = {
        "benchmark": "bench_trees",
        "size": args.size,
        "model": args.model,
        "command": command_line(),
        "machine": machine_info(args.threads),
        "measures": "time to compute the SCI charts (every span of every sentence, last layer, threshold 0) of "
                    f"{len(words)} grammar-suite sentences of {min(lengths)}..{max(lengths)} words, lmscope's "
                    "fast procedure (one masked pass per span start, batched) against the reference one (one "
                    "masked pass per span, one sentence and one pass at a time)",
        "sentences": len(words), "words": lengths, "layer": layer, "batch_size": args.batch_size,
        "seconds_fast": t_fast, "seconds_reference": t_ref, "speedup": speedup,
        "passes_fast": fs.passes, "passes_reference": rs.passes, "calls_fast": fs.forward_calls,
        "calls_reference": rs.forward_calls,
        "max_abs_chart_diff": max_diff, "identical_trees": same_trees, "results_equal": equal,
        "t_score_fast": float(np.mean(scores_fast)), "t_score_reference": float(np.mean(scores_ref)),
        "parsing_f1": f1,
        "table": {"header": header, "rows": trows},
    }
    path = write_result("bench_trees" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(f"wrote {path}")
    if not equal:
        raise SystemExit("the fast and reference charts differ")


if __name__ == "__main__":
    main()
