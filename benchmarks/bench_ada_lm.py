"""Ada's language-model cost: LM calls per solved task, and the LM cache making a rerun of the same seed free.

One Ada run (`lmscope.planning.ada.run_ada`) on a world with the bundled code model and a fresh LM cache
file: its LM calls (every completion the model computed), solved tasks, and wall seconds. Then the same
run again (same seed and settings, a new run folder, the same cache file): every completion must come
from the cache (0 computed), the run must give the same history and library, and the ratio of the two
runs' wall seconds is the cache's effect.

    .venv/bin/python benchmarks/bench_ada_lm.py                       # minecraft, 8 training tasks, 2 iterations
    .venv/bin/python benchmarks/bench_ada_lm.py --size small          # 4 training tasks, 1 iteration
    .venv/bin/python benchmarks/bench_ada_lm.py --world household --n-train 12
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import command_line, machine_info, table, write_result

from lmscope.lm import open_lm
from lmscope.planning.ada import run_ada


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["small", "full"], default="full", help="small: 4 training tasks, 1 iteration")
    ap.add_argument("--world", default="minecraft", choices=["minecraft", "household"])
    ap.add_argument("--lm", default="local:qwen2.5-coder-0.5b")
    ap.add_argument("--n-train", type=int, default=8)
    ap.add_argument("--n-heldout", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.size == "small":
        args.n_train, args.n_heldout, args.iterations = 4, 2, 1
    settings = dict(iterations=args.iterations, n_train=args.n_train, n_heldout=args.n_heldout, seed=args.seed)
    passes = []
    with tempfile.TemporaryDirectory(prefix="bench-ada-") as tmp:
        os.environ["LMSCOPE_CACHE"] = str(Path(tmp) / "cache")  # a fresh planner cache as well
        cache = Path(tmp) / "lm.sqlite"
        for k in range(2):
            lm = open_lm(args.lm, cache=cache)
            t0 = time.perf_counter()
            out = run_ada(args.world, lm, Path(tmp) / f"run{k}", quiet=True, **settings)
            wall = time.perf_counter() - t0
            stats = lm.stats.to_dict()
            lm.close()
            solved = out["history"][-1]["train_solved"]
            passes.append({"wall_s": wall, "lm_calls": out["counters"]["lm_calls"], "computed": stats["misses"],
                           "from_cache": stats["hits"], "train_solved": solved,
                           "heldout_solved": out["history"][-1].get("heldout_solved"),
                           "history": out["history"], "library": [o["name"] for o in out["library"]]})
            print(f"pass {k + 1}: {wall:.1f} s, {stats['misses']} computed, {stats['hits']} from the cache, "
                  f"{solved} training tasks solved", flush=True)
    first, second = passes
    same = ([{k: v for k, v in h.items() if k not in ("seconds", "planner_seconds")} for h in first["history"]]
            == [{k: v for k, v in h.items() if k not in ("seconds", "planner_seconds")} for h in second["history"]]
            and first["library"] == second["library"])
    per_solved = first["lm_calls"] / first["train_solved"] if first["train_solved"] else None
    ratio = first["wall_s"] / second["wall_s"]
    free = second["computed"] == 0
    rows = [["first run", f"{first['wall_s']:.1f}", first["computed"], first["from_cache"], first["train_solved"]],
            ["rerun, same seed", f"{second['wall_s']:.1f}", second["computed"], second["from_cache"],
             second["train_solved"]]]
    header = ["run", "wall s", "LM completions computed", "from the cache", "training tasks solved"]
    headline = (f"Ada on {args.world} ({args.n_train} training tasks, {args.iterations} iterations, {args.lm}): "
                f"{first['lm_calls']} LM calls for {first['train_solved']} solved training tasks ("
                + (f"**{per_solved:.1f}** calls per solved task" if per_solved else "none solved")
                + f"); the rerun of the same seed computed {second['computed']} completions "
                f"({'free' if free else 'NOT free'}) and took {second['wall_s']:.1f} s against {first['wall_s']:.1f} s "
                f"(**{ratio:.1f}x** less), same history and library: {'yes' if same else 'NO'}.")
    payload = {"benchmark": "bench_ada_lm", "command": command_line(), "machine": machine_info(None),
               "measures": "LM calls per solved training task of one Ada run with a fresh LM cache, and a rerun of "
                           "the same seed and settings against the same cache (computed completions, wall ratio)",
               "settings": {**settings, "world": args.world, "lm": args.lm}, "passes": passes,
               "calls_per_solved_task": per_solved, "rerun_computed": second["computed"], "wall_ratio": ratio,
               "same_results": same, "results_equal": same and free, "headline": headline,
               "table": {"header": header, "rows": rows}}
    path = write_result("bench_ada_lm" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")
    if not (same and free):
        raise SystemExit("the rerun was not free or gave other results")


if __name__ == "__main__":
    main()
