"""Pushdown layers: beam search with reordered caches against recomputing every prefix, and the training
step time of a pushdown model against the same model without the tape and the small transformer.

(a) Beam search over the attachments of 20-word sentences (question-formation declaratives, their
words run together and cut into 20-word pieces), beam 32, one sentence at a time: lmscope's
``beam_search`` (one new position per hypothesis per word, the cache rows reordered by hypothesis)
against ``beam_search_reference`` (every hypothesis's whole prefix through the full forward pass
again at every word, all hypotheses of a word in one batch). Same model, same threads; the final
beams must be identical and the scores equal within 1e-5. The model has random weights, with its
depth tables (zero at initialization) drawn N(0, 0.5²) so that the tape changes every score.

(b) One training step (collate, forward, loss, backward, AdamW step) on the same batches of
question-formation declaratives with their gold trees: the pushdown model (every layer reads the tape,
LM + attachment loss), the same relative-position model without tape and attachment head (LM loss),
and lmscope's small transformer (sinusoidal positions, LM loss) of the same size. Trials interleave
the three; the median step time of each is reported.

    .venv/bin/python benchmarks/bench_pushdown.py                # full: d_model 256, 4 layers, 8 sentences
    .venv/bin/python benchmarks/bench_pushdown.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import command_line, machine_info, table, write_result

from lmscope.data.suites import make_suite
from lmscope.data.trees import leaves, parse_bracketed
from lmscope.models.small import SmallConfig, SmallTransformer
from lmscope.models.small_tokenizer import WordTokenizer, pad_batch
from lmscope.pushdown.beam import beam_search, beam_search_reference
from lmscope.pushdown.model import PushdownConfig, PushdownLM
from lmscope.pushdown.train import collate, example_from_tree, prepare, pushdown_loss
from lmscope.train.loop import lm_batch_loss

SIZES = {
    "small": {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 128, "sentences": 2, "beam": 8,
              "batch": 8, "steps": 5, "trials": 1},
    "full": {"d_model": 256, "n_layers": 4, "n_heads": 8, "d_ff": 1024, "sentences": 8, "beam": 32,
             "batch": 32, "steps": 20, "trials": 5},
}
WORDS = 20
TARGET_BEAM, TARGET_TRAIN = 5.0, 2.0


def data(seed: int):
    rows = [r for r in make_suite("question-formation", 400, 0, 0, seed=seed) if r.get("tree")]
    trees = [parse_bracketed(r["tree"], labeled=False) for r in rows]
    tok = WordTokenizer.build([" ".join(leaves(t)) for t in trees])
    return tok, trees


def sentences(tok, trees, n: int) -> list[list[int]]:
    stream = [w for t in trees for w in leaves(t)]
    pieces = [stream[i: i + WORDS] for i in range(0, WORDS * n, WORDS)]
    return [[tok.bos_id, *tok.encode(" ".join(p)), tok.eos_id] for p in pieces]


def bench_beam(model: PushdownLM, sents: list[list[int]], beam: int) -> dict:
    beam_search(model, sents[0][:6], beam)  # warm-up, untimed
    t0 = time.perf_counter()
    fast = [beam_search(model, s, beam) for s in sents]
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = [beam_search_reference(model, s, beam) for s in sents]
    t_ref = time.perf_counter() - t0
    same = sum(a.attachments == b.attachments for a, b in zip(fast, ref, strict=True))
    diff = max(abs(x - y) for a, b in zip(fast, ref, strict=True) for x, y in zip(a.scores, b.scores, strict=True))
    return {"seconds_cached": t_fast, "seconds_reference": t_ref, "speedup": t_ref / t_fast,
            "identical_beams": same, "max_abs_score_diff": diff, "results_equal": same == len(sents) and diff < 1e-5,
            "log_likelihood_mean": sum(r.log_likelihood for r in fast) / len(fast)}


def bench_train(cfg: dict, tok, trees, seed: int) -> dict:
    V = tok.vocab_size
    sizes = {k: cfg[k] for k in ("d_model", "n_layers", "n_heads", "d_ff")}
    models = {
        "pushdown": PushdownLM(PushdownConfig(vocab_size=V, **sizes), seed=seed),
        "relative (no tape)": PushdownLM(PushdownConfig(vocab_size=V, pushdown_layers=(), **sizes), seed=seed),
        "small transformer": SmallTransformer(SmallConfig(vocab_size=V, max_len=256, **sizes), seed=seed),
    }
    examples = [example_from_tree(tok, t) for t in trees]
    prepared = {name: prepare(examples if name == "pushdown" else [(i, None) for i, _ in examples],
                              m.config, tok) for name, m in models.items() if name != "small transformer"}
    gen = torch.Generator().manual_seed(seed)
    B, steps = cfg["batch"], cfg["steps"]
    batches = [torch.randint(len(examples), (B,), generator=gen).tolist() for _ in range(steps)]

    def step_fn(name, model):
        if name == "small transformer":
            return lambda idx: lm_batch_loss(model, *pad_batch([examples[i][0] for i in idx], 0))
        items = prepared[name]
        return lambda idx: pushdown_loss(model, collate([items[i] for i in idx], 0))

    runners = {}
    for name, model in models.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        runners[name] = (model.train(), opt, step_fn(name, model))
    times: dict[str, list[float]] = {name: [] for name in models}
    for trial in range(cfg["trials"] + 1):  # trial 0 warms up, untimed
        for name, (_model, opt, fn) in runners.items():
            t0 = time.perf_counter()
            for idx in batches:
                loss = fn(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if trial:
                times[name].append((time.perf_counter() - t0) / steps)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    tokens = sum(len(examples[i][0]) for idx in batches for i in idx) / steps
    return {"median_step_s": med, "parameters": params, "tokens_per_batch": tokens,
            "ratio_vs_plain": med["pushdown"] / med["relative (no tape)"],
            "ratio_vs_small": med["pushdown"] / med["small transformer"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--d-model", type=int, help="override the size's d_model (d_ff = 4 d_model, heads of 32)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dict(SIZES[args.size])
    if args.d_model:
        cfg.update(d_model=args.d_model, d_ff=4 * args.d_model, n_heads=max(1, args.d_model // 32))
    tok, trees = data(args.seed)

    model = PushdownLM(PushdownConfig(vocab_size=tok.vocab_size, **{k: cfg[k] for k in
                                                                    ("d_model", "n_layers", "n_heads", "d_ff")}),
                       seed=args.seed).eval()
    g = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        for block in model.layers:
            block.attn.depth.copy_(torch.randn(block.attn.depth.shape, generator=g) * 0.5)
        model.attach.depth.weight.copy_(torch.randn(model.attach.depth.weight.shape, generator=g) * 0.5)
    sents = sentences(tok, trees, cfg["sentences"])
    print(f"(a) beam {cfg['beam']}, {len(sents)} sentences of {WORDS} words, d_model {cfg['d_model']}, "
          f"{cfg['n_layers']} layers, {args.threads} thread(s)", flush=True)
    a = bench_beam(model, sents, cfg["beam"])
    print(f"cached {a['seconds_cached']:.2f} s, reference {a['seconds_reference']:.2f} s: {a['speedup']:.1f}x; "
          f"identical beams {a['identical_beams']}/{len(sents)}, max |score diff| {a['max_abs_score_diff']:.1e}",
          flush=True)
    print(f"(b) training steps: batch {cfg['batch']}, {cfg['steps']} steps x {cfg['trials']} trials", flush=True)
    b = bench_train(cfg, tok, trees, args.seed)
    for name, s in b["median_step_s"].items():
        print(f"  {name}: {1000 * s:.1f} ms/step ({b['parameters'][name]:,} parameters)")
    print(f"pushdown / no tape {b['ratio_vs_plain']:.2f}x, pushdown / small transformer {b['ratio_vs_small']:.2f}x")

    header = ["measure", "lmscope", "baseline", "ratio", "target", "met"]
    rows = [
        [f"beam {cfg['beam']}, {len(sents)} x {WORDS}-word sentences (s)", f"{a['seconds_cached']:.2f} (cached)",
         f"{a['seconds_reference']:.2f} (recompute prefixes)", f"{a['speedup']:.1f}x speed-up", f">= {TARGET_BEAM:g}x",
         "yes" if a["speedup"] >= TARGET_BEAM else "no"],
        ["training step, pushdown vs same model without tape (ms)", f"{1000 * b['median_step_s']['pushdown']:.1f}",
         f"{1000 * b['median_step_s']['relative (no tape)']:.1f}", f"{b['ratio_vs_plain']:.2f}x time",
         f"<= {TARGET_TRAIN:g}x", "yes" if b["ratio_vs_plain"] <= TARGET_TRAIN else "no"],
        ["training step, pushdown vs small transformer (ms)", f"{1000 * b['median_step_s']['pushdown']:.1f}",
         f"{1000 * b['median_step_s']['small transformer']:.1f}", f"{b['ratio_vs_small']:.2f}x time",
         f"<= {TARGET_TRAIN:g}x", "yes" if b["ratio_vs_small"] <= TARGET_TRAIN else "no"],
    ]
    print(table(rows, header))
    met = a["speedup"] >= TARGET_BEAM and b["ratio_vs_small"] <= TARGET_TRAIN and b["ratio_vs_plain"] <= TARGET_TRAIN
    headline = (f"Beam search (beam {cfg['beam']}, {WORDS}-word sentences) with reordered caches: **{a['speedup']:.1f}x** "
                f"faster than recomputing every hypothesis's prefix (target >= {TARGET_BEAM:g}x), identical beams for "
                f"{a['identical_beams']} of {len(sents)} sentences, scores within {a['max_abs_score_diff']:.1e} "
                f"(tolerance 1e-5): {'yes' if a['results_equal'] else 'NO'}. A training step of the pushdown model "
                f"takes **{b['ratio_vs_plain']:.2f}x** the time of the same model without the tape and "
                f"**{b['ratio_vs_small']:.2f}x** that of the small transformer of the same size (target <= "
                f"{TARGET_TRAIN:g}x: {'met' if b['ratio_vs_small'] <= TARGET_TRAIN and b['ratio_vs_plain'] <= TARGET_TRAIN else 'not met'}).")
    payload = {
        "benchmark": "bench_pushdown", "size": args.size, "command": command_line(),
        "machine": machine_info(args.threads), "threads": args.threads,
        "measures": f"(a) time of beam search over attachments (beam {cfg['beam']}) on {len(sents)} sentences of "
                    f"{WORDS} words with a pushdown LM (d_model {cfg['d_model']}, {cfg['n_layers']} layers), caches "
                    "reordered by hypothesis against recomputing every hypothesis's prefix with the full forward pass; "
                    f"(b) the time of one training step (batch {cfg['batch']} of question-formation declaratives "
                    "with gold trees) of that pushdown model against the same relative-position model without the "
                    "tape and attachment head, and against the small transformer of the same size",
        "model": f"pushdown-d{cfg['d_model']}",
        "model_config": {k: cfg[k] for k in ("d_model", "n_layers", "n_heads", "d_ff")},
        "beam": cfg["beam"], "words": WORDS, "sentences": len(sents), "beam_search": a, "train_step": b,
        "target_beam_speedup": TARGET_BEAM, "target_train_ratio": TARGET_TRAIN, "target_met": met,
        "results_equal": a["results_equal"], "headline": headline, "table": {"header": header, "rows": rows},
    }
    suffix = ("" if args.size == "full" else f"-{args.size}") + (f"-d{args.d_model}" if args.d_model else "")
    path = write_result("bench_pushdown" + suffix, payload)
    print(f"wrote {path}")
    if not a["results_equal"]:
        raise SystemExit("the cached and recomputed beams differ")


if __name__ == "__main__":
    main()
