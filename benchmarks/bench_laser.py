"""LASER search throughput: lmscope's search loop against the straightforward way, same configs and data.

Straightforward (what the reference scripts did): for every config, a fresh deep copy of the model,
a new SVD of the matrix, and a full forward pass (all positions, full vocabulary) per example, one
example at a time. lmscope: one SVD per matrix reused for every keep, batched examples with only the
answer positions projected onto the vocabulary, and the stored hidden states entering the edited
layer replayed so only the layers from there up run.

Both sides score identical token sequences and compute the metrics with the same code, so the
per-example results must agree (top-1 / top-k decisions, and answer log-probs up to float rounding);
the script checks that and reports configs per second and the ratio.

    .venv/bin/python benchmarks/bench_laser.py                # full: 4 layers x 2 roles x 9 keeps, 60 examples
    .venv/bin/python benchmarks/bench_laser.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import numpy as np
import torch
from _common import command_line, machine_info, table, write_result

from lmscope.data.evalsets import load_eval_task
from lmscope.lm.scoring import TaskScorer
from lmscope.models import open_model
from lmscope.models.checkpoint import WeightEditor
from lmscope.models.roles import canonical_role
from lmscope.spectral import SVDCache
from lmscope.spectral.laser import Reduction, kept_rank
from lmscope.spectral.laser_search import DEFAULT_KEEPS, score_grid

SIZES = {
    "small": {"layers": [20, 29], "keeps": [0.5, 0.1, 0.01], "examples": 30},
    "full": {"layers": [8, 15, 22, 29], "keeps": list(DEFAULT_KEEPS), "examples": 60},
}


@torch.no_grad()
def naive_config(base_model, src, scorer: TaskScorer, red: Reduction):
    """One config the straightforward way; returns per-example Scores (same aggregation code)."""
    model = copy.deepcopy(base_model)  # a fresh copy per config
    editor = WeightEditor(model, src)
    W = editor.get(red.key)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)  # a new SVD per config
    k = kept_rank(tuple(W.shape), red.keep)
    editor.set({red.key: (U[:, :k] * S[:k]) @ Vh[:k]})
    nq = len(scorer.q_ids)
    q_lp, q_n = np.zeros(nq), np.zeros(nq, dtype=int)
    q_top = np.full((nq, scorer.k), -1, dtype=int)
    for q in range(nq):  # one example at a time, full logits
        ids = torch.tensor([scorer.q_ids[q]])
        logits = model(input_ids=ids).logits[0].float()
        lp = logits.log_softmax(-1)
        pos, tgt = scorer.q_pos[q], scorer.q_tgt[q]
        q_lp[q] = sum(float(lp[p, t]) for p, t in zip(pos, tgt, strict=True))
        q_n[q] = len(tgt)
        q_top[q] = logits[pos[0]].topk(scorer.k).indices.numpy()
    return scorer._aggregate(q_lp, q_n, q_top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size = SIZES[args.size]

    src = open_model(args.model)
    model = src.load_model().eval()
    tok = src.load_tokenizer()
    task = load_eval_task("factual_recall")
    pick = np.random.default_rng(args.seed).choice(len(task), size["examples"], replace=False)
    task = task.subset(sorted(pick.tolist()))
    grid = [Reduction(L, role, k) for L in size["layers"] for role in ("fc_in", "fc_out") for k in size["keeps"]]
    print(f"{len(grid)} configs x {len(task)} examples on {args.model}, {args.threads} threads", flush=True)

    # lmscope: scorer set-up, prefix caching and every SVD are inside the timed region
    with tempfile.TemporaryDirectory() as tmp:
        svds = SVDCache(root=tmp)
        t0 = time.perf_counter()
        scorer = TaskScorer(model, tok, task, batch_size=32, top_k=5)
        editor = WeightEditor(model, src)
        rows, _ = score_grid(scorer, editor, svds, grid, keep_scores=True)
        t_fast = time.perf_counter() - t0
    print(f"lmscope: {t_fast:.1f} s ({len(grid) / t_fast:.2f} configs/s)", flush=True)

    t0 = time.perf_counter()
    naive = []
    for i, red in enumerate(grid):
        naive.append(naive_config(model, src, scorer, red))
        if (i + 1) % max(1, len(grid) // 8) == 0:
            print(f"  straightforward: {i + 1}/{len(grid)} configs, {time.perf_counter() - t0:.0f} s", flush=True)
    t_naive = time.perf_counter() - t0
    print(f"straightforward: {t_naive:.1f} s ({len(grid) / t_naive:.3f} configs/s)", flush=True)

    max_lp = 0.0
    top1_diff = topk_diff = 0
    for row, ns in zip(rows, naive, strict=True):
        fs = row["scores"]
        max_lp = max(max_lp, float(np.max(np.abs(fs.logprob - ns.logprob))))
        top1_diff += int(np.sum(fs.top1 != ns.top1))
        topk_diff += int(np.sum(fs.topk != ns.topk))
    equal = max_lp < 1e-3 and top1_diff == 0 and topk_diff == 0
    speedup = t_naive / t_fast
    print(f"speed-up {speedup:.1f}x; max |logprob diff| {max_lp:.2e}; top-1 disagreements {top1_diff}, "
          f"top-5 disagreements {topk_diff}: {'identical' if equal else 'DIFFERENT'}")

    accs = [(r["layer"], canonical_role(r["role"]), r["keep"], r["accuracy"]) for r in rows]
    best = max(accs, key=lambda a: a[3])
    header = ["method", "configs", "examples", "seconds", "configs / s"]
    trows = [["straightforward (copy + SVD + one example at a time)", len(grid), len(task), f"{t_naive:.1f}",
              f"{len(grid) / t_naive:.3f}"],
             ["lmscope (SVD reuse + batches + cached prefix)", len(grid), len(task), f"{t_fast:.1f}",
              f"{len(grid) / t_fast:.2f}"]]
    print(table(trows, header))
    payload = {
        "benchmark": "bench_laser",
        "size": args.size,
        "model": args.model,
        "command": command_line(),
        "machine": machine_info(args.threads),
        "measures": "configs per second of a LASER search grid (layers x fc_in/fc_out x keeps) on a seeded sample "
                    "of the bundled factual-recall set, lmscope's search loop against the straightforward way "
                    "(fresh model copy, new SVD and one full forward pass per example, for every config)",
        "configs": len(grid), "examples": len(task), "layers": size["layers"], "keeps": size["keeps"],
        "seconds_lmscope": t_fast, "seconds_straightforward": t_naive, "speedup": speedup, "target_speedup": 10.0,
        "target_met": speedup >= 10.0,
        "max_abs_logprob_diff": max_lp, "top1_disagreements": top1_diff, "topk_disagreements": topk_diff,
        "results_equal": equal,
        "best_config_in_grid": {"layer": best[0], "role": best[1], "keep": best[2], "accuracy": best[3]},
        "table": {"header": header, "rows": trows},
    }
    path = write_result("bench_laser" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
