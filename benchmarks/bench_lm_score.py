"""LM scoring: the local backend's two batching strategies against one forward pass per continuation.

Three workloads of (prompt, continuations) requests, on the same model with the same threads:

- ``priors``: LM-prior queries, short prompts ("A kitchen usually has a") with many one- or
  two-token continuations (the objects), as LaMPP scores them;
- ``few-shot``: multiple-choice questions after a long few-shot prompt (about 130 tokens), 4 choices;
- ``texts``: one continuation per prompt (nothing to share).

Methods: ``reference`` runs each prompt + continuation alone through the full model and reads the
log-probs from its logits; ``flat`` batches every prompt + continuation as its own padded row;
``shared`` runs the part a prompt's continuations share once and only the continuations after it
(the default, ``auto``, of :class:`lmscope.lm.local.LocalLM` uses ``shared`` for prompts with several
continuations and ``flat`` for single ones). Every method's log-probs must agree with the reference
within 1e-4.

    .venv/bin/python benchmarks/bench_lm_score.py                # full size on smollm2-135m
    .venv/bin/python benchmarks/bench_lm_score.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import command_line, machine_info, table, write_result

from lmscope.lm.local import LocalLM

STRATEGIES = ("flat", "shared", "auto")
SIZES = {"small": (4, 6, 2, 8), "full": (16, 20, 8, 32)}  # rooms, objects, few-shot prompts, texts

ROOMS = ["kitchen", "bathroom", "bedroom", "living room", "garage", "office", "dining room", "hallway",
         "laundry room", "basement", "attic", "nursery", "library", "gym", "porch", "closet"]
OBJECTS = ["sink", "toilet", "bed", "sofa", "car", "desk", "table", "lamp", "washing machine", "boiler",
           "trunk", "crib", "bookshelf", "treadmill", "chair", "coat", "oven", "mirror", "television", "rug"]
FACTS = [("the capital of France", "Paris"), ("the largest planet", "Jupiter"), ("the author of Hamlet",
         "Shakespeare"), ("the chemical symbol for gold", "Au"), ("the boiling point of water in Celsius", "100"),
         ("the fastest land animal", "the cheetah"), ("the currency of Japan", "the yen"),
         ("the tallest mountain", "Everest")]
CHOICES = [["Paris", "Rome", "Berlin", "Madrid"], ["Jupiter", "Mars", "Venus", "Saturn"],
           ["Shakespeare", "Dickens", "Austen", "Tolstoy"], ["Au", "Ag", "Fe", "Pb"], ["100", "90", "50", "212"],
           ["the cheetah", "the lion", "the horse", "the antelope"], ["the yen", "the won", "the yuan", "the euro"],
           ["Everest", "K2", "Kilimanjaro", "Denali"]]


def workloads(size: str) -> dict[str, list[tuple[str, list[str]]]]:
    rooms, objects, n_few, n_texts = SIZES[size]
    priors = [(f"A {room} usually has a", [f" {o}" for o in OBJECTS[:objects]]) for room in ROOMS[:rooms]]
    few = []
    for i in range(n_few):
        shots = "".join(f"Q: What is {q}?\nA: {a}\n\n" for j, (q, a) in enumerate(FACTS) if j != i % len(FACTS))
        q, _ = FACTS[i % len(FACTS)]
        few.append((f"Answer each question.\n\n{shots}Q: What is {q}?\nA:", [f" {c}" for c in CHOICES[i % len(FACTS)]]))
    texts = []
    for i in range(n_texts):
        room, obj = ROOMS[i % len(ROOMS)], OBJECTS[(3 * i) % len(OBJECTS)]
        texts.append((f"In the {room} there was a {obj}.", [f" It had been there for {i + 2} years, and nobody "
                                                             f"remembered who had put it next to the {OBJECTS[i % 7]}."]))
    return {"priors": priors, "few-shot": few, "texts": texts}


@torch.inference_mode()
def reference(lm: LocalLM, requests) -> list[list[list[float]]]:
    out = []
    for r, (prompt, conts) in enumerate(requests):
        row = []
        for k, c in enumerate(conts):
            ids, first, _ = lm._encode_score(prompt, c, f"request {r}, continuation {k}")
            lp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids], device=lm.device)).logits[0].double(), -1)
            row.append([float(lp[t - 1, ids[t]]) for t in range(first, len(ids))])
        out.append(row)
    return out


def timed(fn, repeats: int = 1):
    """The result and the best wall time of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return res, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each batched strategy; the best time counts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    lm = LocalLM(args.model, device="cpu", batch_size=args.batch_size)
    lm.score([("Hello", [" world"])])  # load and warm up, untimed
    header = ["workload", "requests", "continuations", "tokens (all rows)", "reference s", "flat s", "shared s",
              "auto s", "reference/flat", "reference/shared", "reference/auto", "flat/shared", "max |diff|"]
    rows, detail, all_equal = [], {}, True
    for name, reqs in workloads(args.size).items():
        ref, t_ref = timed(lambda reqs=reqs: reference(lm, reqs))
        times, diffs = {}, {}
        for strategy in STRATEGIES:
            lm.strategy = strategy
            res, times[strategy] = timed(lambda reqs=reqs: lm.score(reqs), args.repeats)
            diffs[strategy] = max(abs(a - b) for rr, sr in zip(ref, res) for rc, sc in zip(rr, sr)
                                  for a, b in zip(rc, sc.token_logprobs, strict=True))
        n_cont = sum(len(c) for _, c in reqs)
        n_tok = sum(len(lm._encode_score(p, c, "")[0]) for p, cs in reqs for c in cs)
        diff = max(diffs.values())
        all_equal &= diff < 1e-4
        rows.append([name, len(reqs), n_cont, n_tok, f"{t_ref:.2f}",
                     *(f"{times[s]:.2f}" for s in STRATEGIES), *(f"{t_ref / times[s]:.1f}x" for s in STRATEGIES),
                     f"{times['flat'] / times['shared']:.2f}x", f"{diff:.1e}"])
        detail[name] = {"requests": len(reqs), "continuations": n_cont, "tokens": n_tok, "seconds_reference": t_ref,
                        **{f"seconds_{s}": times[s] for s in STRATEGIES},
                        **{f"max_abs_diff_{s}": diffs[s] for s in STRATEGIES}}
        print(f"{name}: reference {t_ref:.2f} s, " + ", ".join(f"{s} {times[s]:.2f} s" for s in STRATEGIES)
              + f", max |diff| {diff:.1e}", flush=True)
    print(table(rows, header))
    payload = {
        "benchmark": "bench_lm_score",
        "size": args.size,
        "model": args.model,
        "command": command_line(),
        "machine": machine_info(args.threads),
        "measures": "time to score (prompt, continuations) requests with the local backend: one forward pass per "
                    "continuation with full logits (reference) against flat batching (every prompt + continuation "
                    "its own padded row), shared-prefix batching (a prompt's shared tokens run once, its "
                    "continuations after them) and auto (shared for several continuations, flat for one; the "
                    "default), on LM-prior, few-shot multiple-choice and one-continuation workloads; batched "
                    f"times are the best of {args.repeats} runs",
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "workloads": detail,
        "results_equal": all_equal,
        "table": {"header": header, "rows": rows},
    }
    path = write_result("bench_lm_score" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(f"wrote {path}")
    if not all_equal:
        raise SystemExit("a batched strategy disagrees with the reference")


if __name__ == "__main__":
    main()
