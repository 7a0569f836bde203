"""Training throughput: lmscope's training loop (metrics log, checkpoints, progress bar) against a
plain PyTorch loop with the same model, optimizer and batches, in one run.

The three variants are timed in turn (plain, lmscope, lmscope + grokking evaluation), ``--repeats``
times, and the median tokens per second of each is compared. The plain loop and lmscope's loop see
the same batches in the same order from the same initial weights, so their final weights must be
equal: the benchmark checks it, to be sure both did the same work.

    .venv/bin/python benchmarks/bench_train.py                  # 4 layers, d 64, 1,000 steps x 3 repeats
    .venv/bin/python benchmarks/bench_train.py --size small     # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import command_line, machine_info, table, write_result

from lmscope.data.suites import make_suite
from lmscope.grokking.metrics import make_eval_fn
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer, pad_batch
from lmscope.train import loop
from lmscope.train.loop import TrainConfig, latest_checkpoint, load_checkpoint, suite_lines, train_lm

SIZES = {"small": (200, 1), "full": (1000, 3)}  # steps per trial, repeats


def plain_loop(model_config: SmallConfig, config: TrainConfig, encoded: list[list[int]]):
    """The same training as train_lm, with nothing around it: no metrics, checkpoints or progress."""
    torch.manual_seed(config.seed)
    model, optimizer, scheduler, order = loop._fresh(model_config, config, len(encoded))
    model.train()
    tokens = 0
    for _ in range(config.steps):
        ids, mask = pad_batch([encoded[i] for i in order.next_batch(config.batch_size)], model_config.pad_id)
        loss = loop.lm_batch_loss(model, ids, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        tokens += int(mask.sum())
    return model, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as sweep runs use)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, repeats = SIZES[args.size]

    rows = make_suite("question-formation", 10000, 200, 200, seed=args.seed)
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    texts = suite_lines(rows, "train")
    tok = WordTokenizer.build(suite_lines(rows, None))
    mcfg = SmallConfig(vocab_size=tok.vocab_size, d_model=64, n_layers=args.layers, n_heads=4, d_ff=256,
                       max_len=256, causal=True, norm="post", positions="sinusoidal")
    # bookkeeping at 10x the cadence of the grokking runs (they log every 1,000 and save every 5,000 steps)
    book = TrainConfig(steps=steps, batch_size=8, lr=1e-4, schedule="constant", eval_every=max(1, steps // 10),
                       ckpt_every=max(1, steps // 2), seed=args.seed)
    grok = TrainConfig(steps=steps, batch_size=8, lr=1e-4, schedule="constant", eval_every=1000 if steps >= 1000
                       else steps, ckpt_every=max(1, steps // 2), seed=args.seed)
    encoded = [tok.encode(t, add_bos=True, add_eos=True) for t in texts]
    eval_fn = make_eval_fn("question-formation", tok, by_split, sample_size=200, seed=args.seed, tree_sample=50)
    print(f"{args.layers} layers, d 64, batch 8, {steps} steps per trial x {repeats}, {args.threads} thread(s)",
          flush=True)

    times: dict[str, list[float]] = {"plain": [], "lmscope": [], "lmscope+grok-eval": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    tokens = None
    equal = True
    os.environ["LMSCOPE_PROGRESS"] = "1"  # draw the progress bar as on a terminal (into a buffer)
    plain_loop(mcfg, TrainConfig(steps=20, batch_size=8, seed=args.seed), encoded)  # warm-up, untimed
    variants = [("plain", book, None), ("lmscope", book, None), ("lmscope+grok-eval", grok, eval_fn)]
    model = None
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            for name, cfg, fn in variants[rep % 3:] + variants[: rep % 3]:  # each goes first once
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "plain":
                    model, tokens = plain_loop(mcfg, cfg, encoded)
                else:
                    run = Path(tmp) / f"{name}-{rep}"
                    with contextlib.redirect_stderr(io.StringIO()):
                        train_lm(run, mcfg, tok, texts, eval_fn=fn, config=cfg, quiet=False)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
            ours = SmallTransformer(mcfg, seed=0)
            load_checkpoint(latest_checkpoint(Path(tmp) / f"lmscope-{rep}"), ours)
            equal = equal and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                    ours.state_dict().values(), strict=True))
            print(f"repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s ({cpu[k][-1]:.1f} s CPU)"
                                                   for k, v in times.items()), flush=True)

    # With one thread, CPU time is the work done and is little disturbed by other jobs on shared cores;
    # wall time also counts waiting for the disk (checkpoints) and is reported next to it.
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    tps = {k: tokens / v for k, v in med_cpu.items()}
    overhead = med_cpu["lmscope"] / med_cpu["plain"] - 1
    overhead_grok = med_cpu["lmscope+grok-eval"] / med_cpu["plain"] - 1
    overhead_wall = med["lmscope"] / med["plain"] - 1
    header = ["loop", "steps", "tokens", "median CPU s", "tokens / CPU s", "CPU vs plain", "median wall s",
              "wall vs plain"]
    trows = [[k, steps, tokens, f"{med_cpu[k]:.2f}", f"{tps[k]:,.0f}", f"{med_cpu[k] / med_cpu['plain']:.3f}x",
              f"{med[k]:.2f}", f"{med[k] / med['plain']:.3f}x"] for k in times]
    print(table(trows, header))
    print(f"bookkeeping overhead {100 * overhead:+.1f}% CPU, {100 * overhead_wall:+.1f}% wall (target < 10%); with the grokking evaluation every "
          f"1,000 steps {100 * overhead_grok:+.1f}%; same final weights: {equal}")
    payload = {
        "benchmark": "bench_train", "size": args.size, "command": command_line(),
        "machine": machine_info(args.threads),
        "measures": f"training throughput (non-pad tokens per CPU second, one thread; wall time alongside) of a {args.layers}-layer, d 64 causal "
                    f"transformer on question formation (batch 8, {steps} steps per trial, median of "
                    f"{repeats} interleaved trials): a plain PyTorch loop against lmscope's train_lm with a "
                    f"metrics row every {book.eval_every} steps, a checkpoint every {book.ckpt_every} steps and "
                    "the progress bar drawn, and against train_lm with the grokking evaluation (accuracies, "
                    "t-score and F1 of 50 sentences, weight norm, attention sparsity) every 1,000 steps",
        "steps": steps, "repeats": repeats, "tokens": tokens, "seconds": times, "cpu_seconds": cpu,
        "median_seconds": med, "median_cpu_seconds": med_cpu, "tokens_per_cpu_second": tps, "overhead": overhead,
        "overhead_wall": overhead_wall, "overhead_with_grok_eval": overhead_grok,
        "same_final_weights": equal, "table": {"header": header, "rows": trows},
    }
    path = write_result("bench_train" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(f"wrote {path}")
    if not equal:
        raise SystemExit("the plain loop and train_lm ended with different weights")


if __name__ == "__main__":
    main()
