"""Training throughput: lmscope's training loop (metrics log, checkpoints, progress bar, exact-resume
state) against a plain PyTorch loop with the same model, optimizer, schedule and batches, in one run.

Two workloads, each timed as interleaved trials (every variant goes first in turn), compared by the
median CPU time (one thread; wall time alongside):

* grokking: the 4-layer, d 64 causal transformer of the structural-grokking runs on question
  formation, plain loop vs :func:`train_lm` (a metrics row every steps/10 and a checkpoint every
  steps/2) vs :func:`train_lm` with the grokking evaluation;
* LoRA: a rank-8 LoRA fine-tune (all linear layers, as ``lmscope finetune``) of a randomly initialized
  Llama (4 layers, hidden 256, grouped-query attention) on the bundled ``recipes-lm`` task with a
  word-level tokenizer, plain loop vs :func:`lmscope.train.loop.train` with the fine-tune's own
  settings, collation and loss (a metrics row every step, a checkpoint every 100 steps).

The plain loops draw their batches from their own copy of the data order (seeded numpy permutations,
batches running on across epochs), so both sides do the same work from the same initial weights:
the final weights must be equal, bit for bit, and the benchmark checks it.

    .venv/bin/python benchmarks/bench_train.py                  # 1,000 grokking / 200 LoRA steps x 5
    .venv/bin/python benchmarks/bench_train.py --size small     # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import command_line, machine_info, table, write_result

from lmscope.data.suites import make_suite
from lmscope.data.tasks import make_task
from lmscope.grokking.metrics import make_eval_fn
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer, pad_batch
from lmscope.train.finetune import FinetuneConfig, batch_collator, batch_loss
from lmscope.train.loop import (
    TrainConfig,
    latest_checkpoint,
    lm_batch_loss,
    load_checkpoint,
    suite_lines,
    train,
    train_lm,
)

# steps per trial (grokking, LoRA), repeats
SIZES = {"small": (200, 40, 1), "full": (1000, 200, 5)}


def plain_batches(n: int, batch_size: int, seed: int):
    """Index batches of seeded epoch permutations; a batch that reaches an epoch's end runs on into the next."""
    rng = np.random.default_rng(seed)
    perm, pos = rng.permutation(n).tolist(), 0
    while True:
        batch = []
        while len(batch) < batch_size:
            if pos == n:
                perm, pos = rng.permutation(n).tolist(), 0
            take = min(batch_size - len(batch), n - pos)
            batch += perm[pos: pos + take]
            pos += take
        yield batch


def plain_adamw(model: torch.nn.Module, config: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=config.lr, betas=config.betas)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, config.lr_factor), params


def plain_loop(model: torch.nn.Module, loss_of, items: list, config: TrainConfig) -> torch.nn.Module:
    """Seeded AdamW steps with warmup, schedule and clipping, and nothing around them."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    opt, sched, params = plain_adamw(model, config)
    batches = plain_batches(len(items), config.batch_size, config.seed)
    model.train()
    for _ in range(config.steps):
        loss = loss_of(model, [items[i] for i in next(batches)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        sched.step()
    return model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


# ------------------------------------------------------------------------------------------------ workloads
def grokking_workload(steps: int, layers: int, seed: int):
    rows = make_suite("question-formation", 10000, 200, 200, seed=seed)
    by_split: dict[str, list[dict]] = {}
    for r in rows:
        by_split.setdefault(r["split"], []).append(r)
    texts = suite_lines(rows, "train")
    tok = WordTokenizer.build(suite_lines(rows, None))
    mcfg = SmallConfig(vocab_size=tok.vocab_size, d_model=64, n_layers=layers, n_heads=4, d_ff=256,
                       max_len=256, causal=True, norm="post", positions="sinusoidal")
    # bookkeeping at 10x the cadence of the grokking runs (they log every 1,000 and save every 5,000 steps)
    book = TrainConfig(steps=steps, batch_size=8, lr=1e-4, schedule="constant", eval_every=max(1, steps // 10),
                       ckpt_every=max(1, steps // 2), seed=seed)
    grok = TrainConfig(steps=steps, batch_size=8, lr=1e-4, schedule="constant",
                       eval_every=1000 if steps >= 1000 else steps, ckpt_every=max(1, steps // 2), seed=seed)
    encoded = [tok.encode(t, add_bos=True, add_eos=True) for t in texts]
    eval_fn = make_eval_fn("question-formation", tok, by_split, sample_size=200, seed=seed, tree_sample=50)
    tokens = 0
    for batch in (b for b, _ in zip(plain_batches(len(encoded), 8, seed), range(steps), strict=False)):
        tokens += sum(len(encoded[i]) for i in batch)

    def plain(tmp: Path, rep: int):
        return plain_loop(SmallTransformer(mcfg, seed=seed), lambda m, items: lm_batch_loss(m, *pad_batch(items, 0)),
                          encoded, book)

    def ours(tmp: Path, rep: int, fn=None, cfg=book, name="lmscope"):
        run = tmp / f"grok-{name}-{rep}"
        train_lm(run, mcfg, tok, texts, eval_fn=fn, config=cfg, quiet=False)
        model = SmallTransformer(mcfg, seed=seed + 1)
        load_checkpoint(latest_checkpoint(run), model)
        return model

    variants = {"plain": plain, "lmscope": ours,
                "lmscope+grok-eval": lambda tmp, rep: ours(tmp, rep, eval_fn, grok, "eval")}
    desc = (f"{layers}-layer, d 64 causal transformer on question formation (batch 8, {steps} steps): "
            f"train_lm with a metrics row every {book.eval_every} steps and a checkpoint every {book.ckpt_every}; "
            f"with the grokking evaluation (accuracies, t-score and F1 of 50 sentences, weight norm, attention "
            f"sparsity) every {grok.eval_every} steps")
    return variants, tokens, desc, {"eval_every": book.eval_every, "ckpt_every": book.ckpt_every}


def _word_tokenizer(texts: list[str], path: Path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t)})
    t = Tokenizer(WordLevel({w: i for i, w in enumerate(["[PAD]", "[UNK]", *words])}, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]")
    tok.save_pretrained(path)
    return tok


def lora_workload(steps: int, seed: int, tmp: Path):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    rows = make_task("recipes-lm", 1000, seed=seed)
    tok = _word_tokenizer([r["text"] for r in rows], tmp / "tokenizer")
    lcfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                       tie_word_embeddings=False)
    torch.manual_seed(seed)
    base_state = LlamaForCausalLM(lcfg).state_dict()
    fcfg = FinetuneConfig(method="lora", rank=8, max_steps=steps, batch_size=8, max_length=128, seed=seed)
    tcfg = fcfg.train_config(len(rows))
    collate = batch_collator(tok, "lm", {}, fcfg.max_length)
    n_params = sum(v.numel() for v in base_state.values())

    def model():
        torch.manual_seed(seed)
        m = LlamaForCausalLM(lcfg)
        m.load_state_dict(base_state)
        return get_peft_model(m, LoraConfig(r=fcfg.rank, lora_alpha=fcfg.lora_alpha, lora_dropout=0.0,
                                            target_modules="all-linear", task_type=TaskType.CAUSAL_LM))

    tokens = 0
    for batch in (b for b, _ in zip(plain_batches(len(rows), 8, seed), range(steps), strict=False)):
        tokens += int(collate([rows[i] for i in batch])[0]["attention_mask"].sum())

    def plain(tmp: Path, rep: int):
        return plain_loop(model(), lambda m, items: batch_loss(m, collate(items)), rows, tcfg)

    def ours(tmp: Path, rep: int):
        m = model()
        train(tmp / f"lora-{rep}", m, batch_loss, rows, tcfg, collate=collate, quiet=False, desc="finetune lora")
        return m

    n_lora = sum(p.numel() for p in model().parameters() if p.requires_grad)
    desc = (f"rank-8 LoRA (all linear layers, {n_lora:,} trainable parameters) of a random Llama "
            f"({n_params / 1e6:.1f}M parameters: 4 layers, hidden 256) on recipes-lm (batch 8, {steps} steps, "
            f"word-level tokens): loop.train with the fine-tune's settings, a metrics row every step and a "
            f"checkpoint every {tcfg.ckpt_every} steps")
    return {"plain": plain, "lmscope": ours}, tokens, desc, {"eval_every": 1, "ckpt_every": tcfg.ckpt_every,
                                                            "parameters": n_params, "trainable": n_lora}


# ------------------------------------------------------------------------------------------------ main
def measure(name: str, variants: dict, repeats: int, tmp: Path) -> dict:
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    equal = True
    names = list(variants)
    for rep in range(repeats):
        models = {}
        for k in names[rep % len(names):] + names[: rep % len(names)]:  # each goes first in turn
            with contextlib.redirect_stderr(io.StringIO()):
                models[k], wall, proc = timed(lambda k=k, rep=rep: variants[k](tmp, rep))
            times[k].append(wall)
            cpu[k].append(proc)
        equal = equal and all(same_weights(models["plain"], m) for k, m in models.items() if k != "plain")
        print(f"{name} repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s ({cpu[k][-1]:.1f} s CPU)"
                                                    for k, v in times.items()), flush=True)
    return {**summarize(times, cpu), "same_final_weights": equal}


def summarize(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict:
    """Medians of each loop's times, the overheads they give, and the median of the per-trial ratios
    (each trial's time over the plain loop's in the same round), which a slow round affects less."""
    def trial_ratio(xs: dict[str, list[float]], k: str) -> float:
        return statistics.median(a / b for a, b in zip(xs[k], xs["plain"], strict=True))

    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ours = [k for k in times if k != "plain"]
    return {"seconds": times, "cpu_seconds": cpu, "median_seconds": med, "median_cpu_seconds": med_cpu,
            "overhead": {k: med_cpu[k] / med_cpu["plain"] - 1 for k in ours},
            "overhead_wall": {k: med[k] / med["plain"] - 1 for k in ours},
            "median_trial_ratio_cpu": {k: trial_ratio(cpu, k) for k in ours},
            "median_trial_ratio_wall": {k: trial_ratio(times, k) for k in ours}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--layers", type=int, default=4, help="layers of the grokking model (default 4)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as sweep runs use)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["grokking", "lora"], help="one workload only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grok_steps, lora_steps, repeats = SIZES[args.size]
    os.environ["LMSCOPE_PROGRESS"] = "1"  # draw the progress bars as on a terminal (into a buffer)

    results, trows = {}, []
    header = ["workload", "loop", "steps", "tokens", "median CPU s", "tokens / CPU s", "CPU vs plain",
              "median wall s", "wall vs plain"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workloads = []
        if args.only in (None, "grokking"):
            workloads.append(("grokking", grok_steps, grokking_workload(grok_steps, args.layers, args.seed)))
        if args.only in (None, "lora"):
            workloads.append(("lora", lora_steps, lora_workload(lora_steps, args.seed, tmp)))
        for name, steps, (variants, tokens, desc, extra) in workloads:
            print(f"{name}: {desc}; {repeats} trial(s), {args.threads} thread(s)", flush=True)
            # warm-up, untimed: the first trial would otherwise pay for lazy imports and allocator growth
            with contextlib.redirect_stderr(io.StringIO()):
                variants["plain"](tmp, -1)
            r = measure(name, variants, repeats, tmp)
            r.update(steps=steps, tokens=tokens, measures=desc, **extra)
            results[name] = r
            for k, c in r["median_cpu_seconds"].items():
                w = r["median_seconds"][k]
                trows.append([name, k, steps, tokens, f"{c:.2f}", f"{tokens / c:,.0f}",
                              f"{c / r['median_cpu_seconds']['plain']:.3f}x", f"{w:.2f}",
                              f"{w / r['median_seconds']['plain']:.3f}x"])

    print(table(trows, header))
    equal = all(r["same_final_weights"] for r in results.values())
    for name, r in results.items():
        print(f"{name}: overhead " + ", ".join(
            f"{k} {100 * v:+.1f}% CPU ({100 * r['overhead_wall'][k]:+.1f}% wall; median per-trial ratio "
            f"{r['median_trial_ratio_cpu'][k]:.3f} CPU, {r['median_trial_ratio_wall'][k]:.3f} wall)"
            for k, v in r["overhead"].items()) + f" (target < 10%); same final weights: {r['same_final_weights']}")
    payload = {
        "benchmark": "bench_train", "size": args.size, "command": command_line(),
        "machine": machine_info(args.threads),
        "measures": "training time (median CPU seconds of interleaved trials, one thread; wall time alongside) "
                    "of lmscope's training loop against a plain PyTorch loop doing the same steps: "
                    + "; ".join(f"{k}: {r['measures']}" for k, r in results.items()),
        "repeats": repeats, "workloads": results, "same_final_weights": equal,
        "table": {"header": header, "rows": trows},
    }
    path = write_result("bench_train" + ("" if args.size == "full" and not args.only else
                                         f"-{args.size}" + (f"-{args.only}" if args.only else "")), payload)
    print(f"wrote {path}")
    if not equal:
        raise SystemExit("the plain loop and lmscope's loop ended with different weights")


if __name__ == "__main__":
    main()
