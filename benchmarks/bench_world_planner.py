"""Oracle planning on the planning worlds' own tasks: Fast Downward (lama-first) against pyperplan, and the
planner cache on a repeated iteration.

The tasks are those the Ada loop plans for: a seeded sample of each world's generated tasks (``minecraft``
and ``household``, training and held-out tasks mixed), each planned with the world's ground-truth domain
(``world.oracle_domain()``, ``world.problem(task)``).

(a) Each planner plans every task once without the cache (a separate process per call, as always), with a
per-call time limit; a run past the limit is a timeout and is reported as such. The ratio of their planner
seconds is taken over the tasks both solved, and a lower bound over every task Fast Downward solved counts
each pyperplan timeout at the limit. Every plan of either planner is checked twice: symbolically against the
domain (``validate_plan``) and by running it in the world's simulator (``world.execute``). (b) The same
batch is planned twice with the default planner and the cache on (a fresh cache folder), as a repeated
iteration of the loop would: the first pass runs the planner, the second reads the cache; the ratio of the
two passes' wall seconds (target >= 10x), the planner processes each pass started, and the same plans.

    .venv/bin/python benchmarks/bench_world_planner.py                # full size: 12 tasks per world
    .venv/bin/python benchmarks/bench_world_planner.py --size small   # a quick smoke run: 3 per world
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import command_line, machine_info, table, write_result

from lmscope.planning import plan, planner_runs, validate_plan
from lmscope.planning.worlds import get_world

WORLDS = ("minecraft", "household")
SIZES = {"small": (2, 1), "full": (8, 4)}  # (training, held-out) tasks per world
PLANNERS = ("fast-downward", "pyperplan")
TARGET_CACHE = 10.0


def median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def ratio_over(per: dict, names: list[str], limit: float) -> dict:
    """pyperplan / Fast Downward planner seconds over the tasks both solved, and the lower bound over the
    tasks Fast Downward solved with each pyperplan timeout counted at the time limit."""
    both = [k for k in names if all(per[k][p]["status"] == "solved" for p in PLANNERS)]
    fd_solved = [k for k in names if per[k]["fast-downward"]["status"] == "solved"
                 and per[k]["pyperplan"]["status"] in ("solved", "timeout")]

    def secs(keys: list[str], p: str, at_limit: bool = False) -> float:
        return sum(min(per[k][p]["seconds"], limit) if at_limit and per[k][p]["status"] == "timeout"
                   else per[k][p]["seconds"] for k in keys)

    out = {"both_solved": len(both), "fd_solved": len(fd_solved),
           "fd_s_both": secs(both, "fast-downward"), "pyperplan_s_both": secs(both, "pyperplan"),
           "fd_s_fd_solved": secs(fd_solved, "fast-downward"),
           "pyperplan_s_at_limit": secs(fd_solved, "pyperplan", at_limit=True)}
    out["ratio_both_solved"] = out["pyperplan_s_both"] / out["fd_s_both"] if both else None
    out["ratio_lower_bound"] = out["pyperplan_s_at_limit"] / out["fd_s_fd_solved"] if fd_solved else None
    out["median_task_ratio"] = median([per[k]["pyperplan"]["seconds"] / per[k]["fast-downward"]["seconds"]
                                       for k in both])
    return out


def fmt_ratio(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}x"


def cell(e: dict) -> str:
    """One planner's result on one task, for the table."""
    if e["status"] != "solved":
        return f"{e['status']} ({e['seconds']:.1f} s)"
    ok = "checks, runs" if e["valid"] and e["executes"] else "FAILS"
    return f"{e['length']} steps, {e['seconds']:.2f} s, {ok}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per planner call")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    limit = args.time_limit
    n_train, n_heldout = SIZES[args.size]
    batch = []  # (world, task, domain text, problem text)
    for name in WORLDS:
        world = get_world(name)
        dom = world.oracle_domain()
        batch += [(world, t, dom, world.problem(t)) for t in world.make_tasks(n_train, n_heldout, args.seed)]

    # (a) both planners, no cache
    rows, per = [], {}
    all_checked, agree = True, True
    for world, task, dom, prob in batch:
        res = {p: plan(dom, prob, planner=p, time_limit=limit, cache=False) for p in PLANNERS}
        entry = {"world": world.name, "split": task.split,
                 "template": task.template, "recipe": list(task.recipe)}
        for p, r in res.items():
            valid = executes = None
            if r.solved:
                valid = validate_plan(dom, prob, r.actions).ok
                executes = world.execute(task, r.actions).success
                all_checked &= valid and executes
            entry[p] = {"status": r.status, "seconds": r.seconds, "length": len(r.actions), "valid": valid,
                        "executes": executes, "message": r.message}
        decided = [r.status for r in res.values() if r.status in ("solved", "unsolvable")]
        agree &= len(set(decided)) <= 1  # a timeout or error decides nothing
        per[task.id] = entry

        both = all(r.solved for r in res.values())
        rows.append([task.id, f"{task.template} ({task.split})", cell(entry["fast-downward"]), cell(entry["pyperplan"]),
                     f"{res['pyperplan'].seconds / res['fast-downward'].seconds:.1f}" if both else
                     (f">= {min(res['pyperplan'].seconds, limit) / res['fast-downward'].seconds:.0f}"
                      if res["fast-downward"].solved and res["pyperplan"].status == "timeout" else "n/a")])
        print(rows[-1], flush=True)

    overall = ratio_over(per, list(per), limit)
    by_world = {w: ratio_over(per, [k for k, v in per.items() if v["world"] == w], limit) for w in WORLDS}
    counts = {p: {s: sum(v[p]["status"] == s for v in per.values())
                  for s in ("solved", "unsolvable", "timeout", "error")} for p in PLANNERS}
    timeouts = {p: sorted(k for k, v in per.items() if v[p]["status"] == "timeout") for p in PLANNERS}

    # (b) the same batch twice with the default planner and the cache on (a fresh cache folder)
    with tempfile.TemporaryDirectory(prefix="bench-world-planner-cache-") as cache:
        os.environ["LMSCOPE_CACHE"] = cache
        passes, outs = [], []
        for _ in range(2):
            runs0 = planner_runs()
            t0 = time.perf_counter()
            out = [plan(dom, prob, time_limit=limit) for _, _, dom, prob in batch]
            wall = time.perf_counter() - t0
            runs1 = planner_runs()
            passes.append({"wall_s": wall, "cached": sum(r.cached for r in out),
                           "planner_s": sum(r.seconds for r in out if not r.cached),
                           "planner_processes": sum(runs1[p] - runs0.get(p, 0) for p in runs1),
                           "statuses": {s: sum(r.status == s for r in out) for s in ("solved", "timeout", "error")},
                           "planner": sorted({r.planner for r in out})})
            outs.append([(r.status, r.actions) for r in out])
        same = outs[0] == outs[1]  # the cached pass gives the first pass's plans
    cache_ratio = passes[0]["wall_s"] / passes[1]["wall_s"]
    met = cache_ratio >= TARGET_CACHE

    n = len(batch)
    rows.append(["total (both solved)", f"{overall['both_solved']} tasks",
                 f"{overall['fd_s_both']:.2f} s", f"{overall['pyperplan_s_both']:.2f} s",
                 fmt_ratio(overall["ratio_both_solved"], 2)])
    header = ["task", "template (split)", "fast-downward", "pyperplan", "pyperplan / fast-downward"]
    world_parts = "; ".join(
        f"{w}: {fmt_ratio(r['ratio_both_solved'])} over {r['both_solved']}"
        + (f", >= {fmt_ratio(r['ratio_lower_bound'])} with timeouts at the limit"
           if r["ratio_lower_bound"] != r["ratio_both_solved"] else "") for w, r in by_world.items())
    timeout_note = (f"pyperplan timed out on {len(timeouts['pyperplan'])} ({', '.join(timeouts['pyperplan'])})"
                    if timeouts["pyperplan"] else "pyperplan never timed out")
    if timeouts["fast-downward"]:
        timeout_note += f"; Fast Downward timed out on {len(timeouts['fast-downward'])}"
    headline = (
        f"On {n} tasks generated by the planning worlds ({n // len(WORLDS)} each of minecraft and household, seed "
        f"{args.seed}, training and held-out; {limit:g} s per planner call), Fast Downward solves "
        f"{counts['fast-downward']['solved']} and pyperplan {counts['pyperplan']['solved']}; {timeout_note}. "
        f"Over the {overall['both_solved']} tasks both solved, pyperplan takes **{fmt_ratio(overall['ratio_both_solved'], 2)}** "
        f"Fast Downward's planner seconds ({overall['pyperplan_s_both']:.2f} s against {overall['fd_s_both']:.2f} s, "
        f"each call a separate process; median per task {fmt_ratio(overall['median_task_ratio'], 2)})"
        + (f"; counting its timeouts at the limit, at least **{fmt_ratio(overall['ratio_lower_bound'], 1)}** over the "
           f"{overall['fd_solved']} Fast Downward solved ({world_parts})" if timeouts["pyperplan"] else
           f"; by world, {world_parts}")
        + f". Every plan of both planners checks "
        f"against the domain and runs to the goal in the world's simulator: {'yes' if all_checked else 'NO'}; "
        f"no disagreement on solvability: {'yes' if agree else 'NO'}. Repeating the iteration with the cache: "
        f"{passes[0]['wall_s']:.2f} s ({passes[0]['planner_processes']} planner processes, "
        f"{passes[0]['planner_s']:.2f} planner seconds) the first time, {passes[1]['wall_s']:.3f} s "
        f"({passes[1]['planner_processes']} processes, {passes[1]['cached']} of {n} from the cache) the second: "
        f"**{cache_ratio:.0f}x** fewer seconds, same plans: {'yes' if same else 'NO'} (target >= {TARGET_CACHE:g}x: "
        f"{'met' if met else 'not met'}).")
    payload = {
        "benchmark": "bench_world_planner", "size": args.size, "command": command_line(), "machine": machine_info(1),
        "measures": "the planner seconds of Fast Downward (lama-first, the up-fast-downward build) and pyperplan "
                    "(greedy best-first, FF heuristic) on the tasks the minecraft and household worlds generate "
                    "(their ground-truth domains), each call a separate process without the cache and with a "
                    "time limit, every plan checked against the domain and run in the world's simulator; and "
                    "the wall seconds of planning the same batch twice with the planner cache (first pass runs "
                    "the planner, second reads the cache)",
        "seed": args.seed, "tasks_per_world": {"train": n_train, "heldout": n_heldout}, "time_limit_s": limit,
        "tasks": per, "status_counts": counts, "timeouts": timeouts, "ratio": overall, "ratio_by_world": by_world,
        "plans_checked": all_checked, "same_solvability": agree, "cache_passes": passes,
        "cache_ratio": cache_ratio, "same_plans": same, "target_cache_ratio": TARGET_CACHE, "target_met": met,
        "results_equal": all_checked and agree and same, "headline": headline,
        "table": {"header": header, "rows": rows},
    }
    path = write_result("bench_world_planner" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")
    if not (all_checked and agree and same):
        raise SystemExit("a plan did not check or run, the planners disagree on solvability, or the cache "
                         "changed a plan")


if __name__ == "__main__":
    main()
