"""What the eigenvalues of a model's Gram matrices cost, solver by solver: the floor under `lmscope spectrum`.

lmscope takes a matrix's singular values as the square roots of the eigenvalues of its Gram matrix
(``lmscope.spectral.svd.singular_values``). For small models almost all of its time is the symmetric
eigensolver, so that solver bounds how much faster than WeightWatcher's float64 SVD it can be
(``bench_weightwatcher.py`` reports that ceiling). This script times, on the same Gram matrices of one
bundled model, each way of getting those eigenvalues that the installed libraries offer:

* ``numpy.linalg.eigvalsh`` in float64 (what lmscope uses) and in float32;
* SciPy's LAPACK drivers ``evd``, ``evr`` and ``ev`` (float64), and the tridiagonal reduction alone
  (``dsytrd``/``ssytrd``: the part every one of them shares);
* ``torch.linalg.eigvalsh`` (float64);
* two matrices at once on two threads (one BLAS thread each) against one after the other;
* WeightWatcher's own call, the float64 SVD of the matrix (values only), as the reference.

Every solver's eigenvalues are checked against float64 ``eigvalsh`` (largest difference relative to the
largest eigenvalue). Each timing is the median of ``--repeat`` passes over all the matrices, BLAS at one
thread.

    .venv/bin/python benchmarks/bench_eigensolvers.py [--model minilm-l6|smollm2-135m] [--repeat 5]

Results go to ``results/bench_eigensolvers[-MODEL].json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from _common import command_line, machine_info, table, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm-l6", choices=["minilm-l6", "smollm2-135m"])
    ap.add_argument("--repeat", type=int, default=5, help="timed passes per solver (>= 1)")
    ap.add_argument("--size", choices=["small", "full"], default="full", help="small: 4 matrices")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    import numpy as np
    import scipy.linalg as sl
    import scipy.linalg.lapack as lapack
    import torch
    from threadpoolctl import threadpool_limits

    from lmscope.models import open_model
    from lmscope.spectral.svd import _gram64

    torch.set_num_threads(1)
    src = open_model(args.model)
    refs = src.matrices()
    if args.size == "small":
        refs = refs[:4]
    mats = []
    for r in refs:
        a = src.load(r).to(torch.float32).numpy()
        mats.append(a if a.shape[0] >= a.shape[1] else a.T)
    grams = [_gram64(a) for a in mats]
    grams32 = [g.astype(np.float32) for g in grams]
    reference = [np.linalg.eigvalsh(g) for g in grams]

    def svd_vals(a):
        return sl.svd(a.astype(np.float64), compute_uv=False, check_finite=False)

    solvers = {
        "numpy eigvalsh, float64 (lmscope)": (lambda g: np.linalg.eigvalsh(g), grams),
        "numpy eigvalsh, float32": (lambda g: np.linalg.eigvalsh(g), grams32),
        "scipy eigvalsh driver=evd, float64": (lambda g: sl.eigvalsh(g, driver="evd", check_finite=False), grams),
        "scipy eigvalsh driver=evr, float64": (lambda g: sl.eigvalsh(g, driver="evr", check_finite=False), grams),
        "scipy eigvalsh driver=ev, float64": (lambda g: sl.eigvalsh(g, driver="ev", check_finite=False), grams),
        "torch eigvalsh, float64": (lambda g: torch.linalg.eigvalsh(torch.from_numpy(g)).numpy(), grams),
        "tridiagonal reduction only (dsytrd), float64": (lambda g: lapack.dsytrd(g, lower=1), grams),
        "tridiagonal reduction only (ssytrd), float32": (lambda g: lapack.ssytrd(g, lower=1), grams32),
    }

    def timed(fn, inputs):
        ts = []
        out = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = [fn(x) for x in inputs]
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts), out

    rows, payload = [], {}
    with threadpool_limits(limits=1, user_api="blas"):
        ww_s, _ = timed(svd_vals, mats)
        for name, (fn, inputs) in solvers.items():
            s, out = timed(fn, inputs)
            err = None
            if "reduction" not in name:
                err = max(float(np.max(np.abs(np.sort(np.asarray(o, dtype=np.float64)) - ref)) / max(ref[-1], 1e-300))
                          for o, ref in zip(out, reference, strict=True))
            payload[name] = {"seconds": s, "max_rel_err": err}
            rows.append([name, f"{s:.3f} s", f"{ww_s / s:.2f}x", "-" if err is None else f"{err:.1e}"])
        serial, _ = timed(lambda g: np.linalg.eigvalsh(g), grams)
        with ThreadPoolExecutor(2) as pool:
            ts = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                list(pool.map(np.linalg.eigvalsh, grams))
                ts.append(time.perf_counter() - t0)
        two = statistics.median(ts)
    rows.append(["numpy eigvalsh float64, 2 matrices at once (2 threads)", f"{two:.3f} s", f"{ww_s / two:.2f}x",
                 f"{serial / two:.2f}x the one-thread speed"])
    rows.insert(0, ["WeightWatcher's call: float64 SVD, values only", f"{ww_s:.3f} s", "1.00x", "-"])
    sizes = sorted({g.shape[0] for g in grams})
    lm = payload["numpy eigvalsh, float64 (lmscope)"]["seconds"]
    best = min(v["seconds"] for k, v in payload.items() if "reduction" not in k)
    print(table(rows, ["eigenvalues of every Gram matrix", "median time", "WW SVD / this", "max rel. error / note"]))
    path = write_result(f"bench_eigensolvers{'' if args.model == 'minilm-l6' else '-' + args.model}", {
        "benchmark": "bench_eigensolvers", "size": args.size, "model": args.model, "command": command_line(),
        "measures": (f"time to get the eigenvalues of the Gram matrices of all {len(grams)} weight matrices of "
                     f"{args.model} (sides {', '.join(map(str, sizes))}), each solver on the same matrices, BLAS at one "
                     f"thread, median of {args.repeat} passes, against WeightWatcher's float64 SVD of the same "
                     "matrices"),
        "headline": (f"The fastest eigensolver available takes {best:.3f} s for the {len(grams)} matrices "
                     f"(lmscope's float64 eigvalsh {lm:.3f} s); WeightWatcher's SVDs take {ww_s:.3f} s. "
                     f"Two matrices at once on the two threads run at {serial / two:.2f}x the one-thread speed."),
        "ww_svd_s": ww_s, "solvers": payload, "two_threads_s": two, "one_thread_s": serial,
        "table": {"header": ["eigenvalues of every Gram matrix", "median time", "WW SVD / this",
                             "max rel. error / note"], "rows": rows},
        "machine": machine_info(threads=1),
    })
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
