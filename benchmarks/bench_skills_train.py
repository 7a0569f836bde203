"""LAST training throughput: steps per second of the full model (posterior, prior, policy, termination; the
loss of ``SkillModel.terms``) against plain behaviour cloning (the same encoders and policy, no latents) on
the same batches.

Both train a fresh model with AdamW for ``steps`` steps on the same sequence of batches of planted
demonstrations (``lmscope.skills.planted``, so no minigrid is needed), one thread; each setting runs
``--repeats`` times, alternating, and the median wall seconds count. The overhead is the full model's
seconds over plain behaviour cloning's.

    .venv/bin/python benchmarks/bench_skills_train.py                # full size
    .venv/bin/python benchmarks/bench_skills_train.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import command_line, machine_info, table, write_result

from lmscope.skills.config import SkillConfig
from lmscope.skills.encode import MissionVocab, make_batch
from lmscope.skills.model import SkillModel
from lmscope.skills.planted import planted_demos, planted_segmentations

SIZES = {"small": {"demos": 64, "steps": 30}, "full": {"demos": 256, "steps": 200}}


def bc_loss(model: SkillModel, batch) -> torch.Tensor:
    """Behaviour cloning with the model's encoders and policy and no skill (a zero skill vector)."""
    o, m = model.encode(batch)
    z = torch.zeros(*o.shape[:2], model.config.skills)
    logits, _ = model.heads(o, m, z)
    return F.cross_entropy(logits[batch.mask], batch.actions[batch.mask])


def run(kind: str, batches, config: SkillConfig, n_words: int) -> float:
    torch.manual_seed(0)
    model = SkillModel(config, n_words)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    t0 = time.perf_counter()
    for batch in batches:
        loss = model.terms(batch)["loss"] if kind == "LAST" else bc_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    size = SIZES[args.size]
    demos = planted_demos(size["demos"], seed=0)
    segs = planted_segmentations(demos, seed=0)
    vocab = MissionVocab.build([d.mission for d in demos])
    config = SkillConfig()
    rng = np.random.default_rng(0)
    batches = [make_batch(demos, segs, vocab, rng.integers(0, len(demos), config.batch_size))
               for _ in range(size["steps"])]
    secs: dict[str, list[float]] = {"LAST": [], "behaviour cloning": []}
    for r in range(args.repeats):
        for kind in secs:
            secs[kind].append(run(kind, batches, config, vocab.size))
            print(f"repeat {r + 1}: {kind}: {secs[kind][-1]:.2f} s", flush=True)
    median = {k: statistics.median(v) for k, v in secs.items()}
    rate = {k: size["steps"] / v for k, v in median.items()}
    overhead = median["LAST"] / median["behaviour cloning"]
    steps_per_batch = float(np.mean([float(b.mask.sum()) for b in batches]))
    rows = [[k, f"{median[k]:.2f} s", f"{rate[k]:.1f}"] for k in secs]
    header = ["training", "median wall", "steps/s"]
    headline = (f"LAST trains at {rate['LAST']:.1f} steps/s against {rate['behaviour cloning']:.1f} for plain "
                f"behaviour cloning on the same batches ({config.batch_size} demos, {steps_per_batch:.0f} steps "
                f"each, K = {config.skills}, hidden {config.hidden}, one thread): **{overhead:.2f}x** the time "
                f"(median of {args.repeats}).")
    payload = {
        "benchmark": "bench_skills_train", "size": args.size, "command": command_line(), "machine": machine_info(1),
        "measures": "wall seconds of AdamW training steps on the same batches: the full LAST loss (posterior, "
                    "prior, all-skill policy, termination) against behaviour cloning with the same encoders and "
                    "policy; median of the repeats",
        "demos": size["demos"], "steps": size["steps"], "batch_size": config.batch_size, "skills": config.skills,
        "hidden": config.hidden, "mean_steps_per_batch": steps_per_batch, "repeats": args.repeats,
        "seconds": secs, "median_seconds": median, "steps_per_second": rate, "overhead": overhead,
        "headline": headline, "table": {"header": header, "rows": rows},
    }
    path = write_result("bench_skills_train" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
