"""BabyAI expert demonstrations: episodes per second generated over all cores against one process.

``make_demos(level, n, seed)`` plays candidate episodes with minigrid's BabyAI bot and keeps the first
``n`` successes; with ``jobs`` > 1 the candidates are played in worker processes. Each setting generates
the same demos ``--repeats`` times (the median wall seconds counts); the ratio is one process's seconds
over all cores'. Both settings' demo folders must be byte-identical (same demos, same files).

    .venv/bin/python benchmarks/bench_skills_demos.py                # full size
    .venv/bin/python benchmarks/bench_skills_demos.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import command_line, machine_info, table, write_result

from lmscope.skills.demos import make_demos, resolve_level, write_demos

SIZES = {"small": {"level": "PutNextLocal", "n": 40}, "full": {"level": "BossLevel", "n": 40}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    level, n = resolve_level(SIZES[args.size]["level"]), SIZES[args.size]["n"]
    cores = os.cpu_count() or 1
    settings = {"all cores": None, "one process": 1}
    secs: dict[str, list[float]] = {k: [] for k in settings}
    files: dict[str, dict[str, bytes]] = {}
    steps = 0
    with tempfile.TemporaryDirectory(prefix="bench-skills-demos-") as tmp:
        for r in range(args.repeats):
            for name, jobs in settings.items():  # alternate, so background load hits both alike
                t0 = time.perf_counter()
                demos = make_demos(level, n, args.seed, jobs=jobs, quiet=True)
                secs[name].append(time.perf_counter() - t0)
                if r == 0:
                    out = Path(tmp) / name.replace(" ", "-")
                    out.mkdir()
                    write_demos(out, demos, level=level, n=n, seed=args.seed)
                    files[name] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
                    steps = sum(len(d) for d in demos)
                print(f"repeat {r + 1}: {name}: {secs[name][-1]:.2f} s", flush=True)
    median = {k: statistics.median(v) for k, v in secs.items()}
    rate = {k: n / v for k, v in median.items()}
    ratio = median["one process"] / median["all cores"]
    identical = files["all cores"] == files["one process"]
    rows = [[k, f"{median[k]:.2f} s", f"{rate[k]:.1f}", f"{steps / median[k]:.0f}"] for k in settings]
    header = ["setting", "median wall", "episodes/s", "steps/s"]
    headline = (f"Generating {n} {level} demos ({steps} bot steps): {rate['all cores']:.1f} episodes/s over all "
                f"{cores} cores against {rate['one process']:.1f} in one process (**{ratio:.2f}x**, median of "
                f"{args.repeats}); byte-identical demo files: {'yes' if identical else 'NO'}.")
    payload = {
        "benchmark": "bench_skills_demos", "size": args.size, "command": command_line(), "machine": machine_info(1),
        "measures": "wall seconds of make_demos (minigrid's BabyAI bot playing candidate episodes until n succeed) "
                    "with jobs=None (a worker process per core) and jobs=1 (in-process), median of the repeats; "
                    "the demo folders both write are compared byte for byte",
        "level": level, "n": n, "seed": args.seed, "steps": steps, "cores": cores, "repeats": args.repeats,
        "seconds": secs, "median_seconds": median, "episodes_per_second": rate, "ratio_all_cores_to_one": ratio,
        "identical_files": identical, "results_equal": identical, "headline": headline,
        "table": {"header": header, "rows": rows},
    }
    path = write_result("bench_skills_demos" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")
    if not identical:
        raise SystemExit("the demo files differ between all cores and one process")


if __name__ == "__main__":
    main()
