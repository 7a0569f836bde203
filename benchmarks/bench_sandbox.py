"""The sandbox for LM-written code: drawing samples per second with the pool on all cores against one at a
time, and the sandbox's overhead per sample against a plain subprocess.

1. Pool: ``--n`` matplotlib drawings (a few shapes each, all different) rendered with
   :func:`lmscope.vision.render.render_many` with ``jobs`` = the cores and ``jobs=1``; samples per second and
   the ratio. Both must give the same images.
2. Overhead: one trivial drawing (``plt.plot([0, 1])`` saved to PNG) run ``--repeats`` times in the bubblewrap
   sandbox (:func:`lmscope.sandbox.run_sandboxed`: namespaces, mounts, supervisor, limits) and as a plain
   ``python -c`` subprocess with the same interpreter and environment, alternating; the ratio of medians
   (target: at most 2x).

    .venv/bin/python benchmarks/bench_sandbox.py                # full size
    .venv/bin/python benchmarks/bench_sandbox.py --size small   # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import command_line, machine_info, table, write_result

from lmscope.sandbox import PYTHON, Limits, run_sandboxed, sandbox_backend
from lmscope.vision.render import render_many

SIZES = {"small": {"n": 6, "repeats": 5}, "full": {"n": 24, "repeats": 15}}
TRIVIAL = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.savefig('image.png')\n"


def drawing(i: int) -> str:
    return ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 3))\n"
            f"ax.add_patch(plt.Circle((0.{i % 9 + 1}, 0.5), 0.2, color='C{i % 10}'))\n"
            f"ax.add_patch(plt.Rectangle((0.1, 0.1), 0.{i % 5 + 2}, 0.2, color='C{(i + 3) % 10}'))\n"
            "ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.axis('off')\nfig.savefig('image.png')\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="full")
    args = ap.parse_args()
    size = SIZES[args.size]
    backend = sandbox_backend()
    cores = len(os.sched_getaffinity(0))
    codes = [(drawing(i), "python") for i in range(size["n"])]
    pool_secs: dict[str, float] = {}
    images = {}
    for name, jobs in (("one at a time", 1), (f"pool of {cores}", cores)):
        t0 = time.perf_counter()
        rs = render_many(codes, jobs=jobs)
        pool_secs[name] = time.perf_counter() - t0
        assert all(r.outcome == "image" for r in rs), [r.detail for r in rs]
        images[name] = [r.image.tobytes() for r in rs]
        print(f"{name}: {pool_secs[name]:.2f} s", flush=True)
    names = list(pool_secs)
    same = images[names[0]] == images[names[1]]
    pool_ratio = pool_secs[names[0]] / pool_secs[names[1]]

    limits = Limits(wall_seconds=60, cpu_seconds=60)
    sand, plain = [], []
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        for _ in range(size["repeats"]):
            t0 = time.perf_counter()
            res = run_sandboxed([PYTHON, "-c", TRIVIAL], outputs=("image.png",), limits=limits)
            sand.append(time.perf_counter() - t0)
            assert res.ok and "image.png" in res.files, res.summary()
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", TRIVIAL], cwd=tmp, env={**env, "MPLCONFIGDIR": tmp}, check=True)
            plain.append(time.perf_counter() - t0)
    med_s, med_p = statistics.median(sand), statistics.median(plain)
    overhead = med_s / med_p
    rows = [[k, f"{v:.2f} s", f"{size['n'] / v:.2f}"] for k, v in pool_secs.items()]
    rows += [["trivial drawing, sandbox", f"{med_s:.3f} s", f"{1 / med_s:.2f}"],
             ["trivial drawing, plain subprocess", f"{med_p:.3f} s", f"{1 / med_p:.2f}"]]
    header = ["setting", "wall", "samples/s"]
    headline = (f"Sandbox ({backend}): {size['n']} drawings at {size['n'] / pool_secs[names[1]]:.2f} samples/s "
                f"with a pool of {cores} against {size['n'] / pool_secs[names[0]]:.2f} one at a time "
                f"(**{pool_ratio:.2f}x**; same images: {'yes' if same else 'NO'}); a trivial drawing takes "
                f"{med_s:.3f} s in the sandbox against {med_p:.3f} s as a plain subprocess (overhead "
                f"**{overhead:.2f}x**, median of {size['repeats']}; target <= 2x).")
    payload = {"benchmark": "bench_sandbox", "size": args.size, "command": command_line(), "machine": machine_info(1),
               "measures": "wall seconds of render_many over n different matplotlib drawings with jobs=1 and "
                           "jobs=cores; and of one trivial drawing run in the sandbox (run_sandboxed) and as a plain "
                           "subprocess, alternating, median of the repeats",
               "backend": backend, "cores": cores, "n": size["n"], "pool_seconds": pool_secs,
               "pool_ratio": pool_ratio, "same_images": same, "sandbox_seconds": sand, "plain_seconds": plain,
               "overhead_ratio": overhead, "results_equal": same, "headline": headline,
               "table": {"header": header, "rows": rows}}
    path = write_result("bench_sandbox" + ("" if args.size == "full" else f"-{args.size}"), payload)
    print(headline)
    print(table(rows, header))
    print(f"wrote {path}")
    if not same:
        raise SystemExit("the pool and the serial run drew different images")


if __name__ == "__main__":
    main()
