"""Classical planners: Fast Downward (lama-first) against pyperplan on the same problems, and the planner
cache on a repeated batch.

The problems are generated with a seed from two typed STRIPS domains (the ones the planning tests use):
deliveries in a ring of rooms with several packages, and crafting chains of growing depth. Every plan of
both planners is checked by simulating it (``validate_plan``); both must agree on solvability.

(a) Each planner plans every problem once without the cache (separate processes, as always): the ratio of
their total planner seconds. (b) The batch is planned twice with the default planner and the cache on (a
fresh cache folder): the first pass runs the planner, the second reads the cache; the ratio of the two
passes' wall seconds (target >= 10x).

    .venv/bin/python benchmarks/bench_planner.py                # full size
    .venv/bin/python benchmarks/bench_planner.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import command_line, machine_info, table, write_result

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _planning_domains import CRAFTING, DELIVERY  # noqa: E402

from lmscope.planning import plan, validate_plan  # noqa: E402

SIZES = {"small": {"delivery": [(4, 1), (5, 2)], "crafting": [2, 3]},
         "full": {"delivery": [(4, 1), (5, 2), (6, 2), (7, 3), (8, 3), (9, 4), (10, 4), (12, 5), (16, 8), (20, 12)],
                  "crafting": [2, 3, 4, 5, 6, 7, 10, 14]}}
TARGET_CACHE = 10.0


def delivery_problem(rooms: int, packages: int, rng: random.Random) -> str:
    rs = [f"r{i}" for i in range(rooms)]
    doors = " ".join(f"(door {rs[i]} {rs[(i + 1) % rooms]}) (door {rs[(i + 1) % rooms]} {rs[i]})"
                     for i in range(rooms))
    ps = [f"pkg{i}" for i in range(packages)]
    where = {p: rng.sample(rs, 2) for p in ps}  # a start and a different goal room for each package
    start = " ".join(f"(at {p} {a})" for p, (a, _) in where.items())
    goal = " ".join(f"(at {p} {b})" for p, (_, b) in where.items())
    return (f"(define (problem deliver-{rooms}-{packages}) (:domain delivery)\n"
            f"  (:objects {' '.join(rs)} - room bot - robot {' '.join(ps)} - package)\n"
            f"  (:init (robot-at bot {rng.choice(rs)}) (free bot) {start} {doors})\n  (:goal (and {goal})))\n")


def crafting_problem(depth: int, rng: random.Random) -> str:
    """A chain item0 -> item1 -> ... (one-ingredient recipes) whose last step joins the two previous items."""
    items = [f"item{i}" for i in range(depth + 1)]
    places = ["home", "forest", "workshop", "mine"]
    recipes = " ".join(f"(recipe1 {items[i]} {items[i + 1]})" for i in range(depth - 1))
    recipes += f" (recipe2 {items[depth - 1]} {items[depth - 2]} {items[depth]})"
    return (f"(define (problem craft-{depth}) (:domain crafting)\n"
            f"  (:objects {' '.join(places)} - place {' '.join(items)} - item)\n"
            f"  (:init (agent-at home) (source {rng.choice(places[1:])} item0) (bench workshop) {recipes})\n"
            f"  (:goal (have {items[depth]})))\n")


def problems(size: str, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = [(f"delivery-{r}x{p}", DELIVERY, delivery_problem(r, p, rng)) for r, p in SIZES[size]["delivery"]]
    out += [(f"crafting-{d}", CRAFTING, crafting_problem(d, rng)) for d in SIZES[size]["crafting"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    probs = problems(args.size, args.seed)
    rows, per = [], {}
    secs = {"fast-downward": 0.0, "pyperplan": 0.0}
    all_valid, agree = True, True
    for name, dom, prob in probs:
        res = {p: plan(dom, prob, planner=p, time_limit=args.time_limit, cache=False) for p in secs}
        valid = {p: r.status != "solved" or validate_plan(dom, prob, r.actions).ok for p, r in res.items()}
        all_valid &= all(valid.values())
        agree &= res["fast-downward"].status == res["pyperplan"].status
        for p, r in res.items():
            secs[p] += r.seconds
        per[name] = {p: {"status": r.status, "seconds": r.seconds, "length": len(r.actions), "valid": valid[p]}
                     for p, r in res.items()}
        rows.append([name, *(f"{res[p].status} {len(res[p].actions)} steps, {res[p].seconds:.2f} s" for p in secs),
                     f"{res['pyperplan'].seconds / res['fast-downward'].seconds:.2f}"])
        print(rows[-1], flush=True)
    ratio = secs["pyperplan"] / secs["fast-downward"]
    each = sorted(v["pyperplan"]["seconds"] / v["fast-downward"]["seconds"] for v in per.values())
    median = each[len(each) // 2] if len(each) % 2 else (each[len(each) // 2 - 1] + each[len(each) // 2]) / 2
    slowest = max(per, key=lambda k: per[k]["pyperplan"]["seconds"])

    with tempfile.TemporaryDirectory(prefix="bench-planner-cache-") as cache:
        os.environ["LMSCOPE_CACHE"] = cache
        passes, outs = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            out = [plan(dom, prob, time_limit=args.time_limit) for _, dom, prob in probs]
            passes.append({"wall_s": time.perf_counter() - t0, "cached": sum(r.cached for r in out),
                           "planner_s": sum(r.seconds for r in out if not r.cached)})
            outs.append([(r.status, r.actions) for r in out])
        same = outs[0] == outs[1]  # the cached pass gives the first pass's plans
    cache_ratio = passes[0]["wall_s"] / passes[1]["wall_s"]
    met = cache_ratio >= TARGET_CACHE
    rows.append(["total", f"{secs['fast-downward']:.2f} s", f"{secs['pyperplan']:.2f} s", f"{ratio:.2f}"])
    header = ["problem", "fast-downward", "pyperplan", "pyperplan / fast-downward"]
    headline = (f"On {len(probs)} generated delivery and crafting problems, pyperplan takes **{ratio:.2f}x** "
                f"Fast Downward's planner seconds ({secs['pyperplan']:.2f} s against {secs['fast-downward']:.2f} s, "
                f"each a separate process); the median per-problem ratio is {median:.2f}x (Fast Downward's ~0.2 s start-up "
                f"dominates small problems) and {per[slowest]['pyperplan']['seconds'] / per[slowest]['fast-downward']['seconds']:.0f}x "
                f"on the hardest for pyperplan ({slowest}); every plan of both checks by simulation: {'yes' if all_valid else 'NO'}; "
                f"same solvability: {'yes' if agree else 'NO'}. Repeating the batch with the cache: "
                f"{passes[0]['wall_s']:.2f} s the first time, {passes[1]['wall_s']:.3f} s the second "
                f"(**{cache_ratio:.0f}x** fewer seconds, {passes[1]['cached']} of {len(probs)} from the cache, same plans: {'yes' if same else 'NO'}; target "
                f">= {TARGET_CACHE:g}x: {'met' if met else 'not met'}).")
    payload = {
        "benchmark": "bench_planner", "size": args.size, "command": command_line(), "machine": machine_info(1),
        "measures": "the planner seconds of Fast Downward (lama-first, the up-fast-downward build) and pyperplan "
                    "(greedy best-first, FF heuristic) on the same generated problems, each run as a separate "
                    "process without the cache, every plan checked by simulation; and the wall seconds of a "
                    "repeated batch with the planner cache (first pass runs the planner, second reads the cache)",
        "problems": per, "planner_seconds": secs, "ratio_pyperplan_to_fd": ratio, "median_problem_ratio": median, "plans_valid": all_valid,
        "same_solvability": agree, "cache_passes": passes, "cache_ratio": cache_ratio, "same_plans": same,
        "target_cache_ratio": TARGET_CACHE, "target_met": met, "results_equal": all_valid and agree and same,
        "headline": headline, "table": {"header": header, "rows": rows},
    }
    path = write_result("bench_planner" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")
    if not (all_valid and agree and same):
        raise SystemExit("a plan did not check, the planners disagree on solvability, or the cache changed a plan")


if __name__ == "__main__":
    main()
