"""lmscope spectrum metrics vs WeightWatcher on the same model, in one run.

* WeightWatcher: ``WeightWatcher(model=model).analyze(layers=<ids>, ...)`` on the model loaded with
  ``open_model(name).load_model()``; plots, randomization, MP fits, eigenvector analysis and detX are
  off, the default power-law fit (``fit="PL"``, WW's own fitter) is kept. ``layers`` restricts it to
  the modules lmscope analyzes (embeddings and poolers excluded), so both see the same matrices.
* lmscope: ``analyze_spectrum(name, cache=SVDCache(enabled=False))`` (reads each matrix from disk).

Reported: the time ratio WW / lmscope (best of ``--repeat`` alternating runs), and per matrix
agreement of alpha (Pearson, Spearman, median |difference|, fraction within 0.1 and 0.5) and of the
largest eigenvalue (WW ``lambda_max`` and ``sv_max`` vs lmscope ``spectral_norm``).

How WW 0.7.x builds its ESD (read from its source): eigenvalues = squared singular values of W as
stored (``W.astype(float)``, float64 SciPy SVD), *not* divided by N (that line is commented out and
``normalize`` defaults to False; ``glorot_fix`` off; the conv2d norm only touches Conv2D). Eigenvalues
<= 1e-5 are dropped before the fit. Its fitter scans every eigenvalue but the largest as xmin (tails
down to 2 points; a separate small-N fit below 20 eigenvalues) and picks the KS minimum; lmscope uses
the same MLE and KS distance but requires a tail of at least 10 eigenvalues. The script also refits
lmscope's eigenvalues with ``powerlaw_fit(min_tail=2)`` to show how much of the alpha disagreement
that one choice explains. Note WW's ``spectral_norm`` column is the largest *eigenvalue* (sv_max^2).

    .venv/bin/python benchmarks/bench_weightwatcher.py [--size small|full] [--model minilm-l6|smollm2-135m]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
import warnings

from _common import command_line, machine_info, table, write_result

NAME = "bench_weightwatcher"
SMALL_LAYERS = [0, 1]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["small", "full"], default="full",
                    help=f"small: layers {SMALL_LAYERS} only (WW's layers= filter); full: every layer")
    ap.add_argument("--model", default="minilm-l6", choices=["minilm-l6", "smollm2-135m"])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (best is reported)")
    ap.add_argument("--threads", type=int, help="BLAS/OpenMP/torch threads (default: libraries' default)")
    ap.add_argument("--rows", type=int, default=12, help="rows of the per-matrix table printed")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:  # before numpy/scipy/torch load their thread pools
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")

    import numpy as np
    import torch
    from scipy import stats

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    import weightwatcher

    from lmscope.models import open_model
    from lmscope.models.roles import classify
    from lmscope.spectral import SVDCache, analyze_spectrum
    from lmscope.spectral.metrics import powerlaw_fit

    info = machine_info(threads=args.threads)
    info["weightwatcher"] = weightwatcher.__version__
    src = open_model(args.model)
    t0 = time.perf_counter()
    model = src.load_model()
    model.eval()
    load_s = time.perf_counter() - t0
    family = src.family
    layers = SMALL_LAYERS if args.size == "small" else None

    # WW's layer ids are the positions in model.named_modules(); keep the modules lmscope analyzes
    ids, key_of_id, module_of_key = [], {}, {}
    for idx, (name, mod) in enumerate(model.named_modules()):
        if not isinstance(mod, torch.nn.Linear):
            continue
        m = classify(name + ".weight", family)
        if m is None or m.fused or (layers is not None and m.layer not in layers):
            continue
        key = f"{m.layer}.{m.role}"
        ids.append(idx)
        key_of_id[idx] = key
        module_of_key[key] = name
    print(f"{args.model}: {type(model).__name__}, {len(ids)} matrices "
          f"({'layers ' + str(layers) if layers else 'all layers'}); model load {load_s:.1f} s")

    def run_ww():
        with open(os.devnull, "w") as devnull:  # WW prints a banner and progress to stdout
            old, sys.stdout = sys.stdout, devnull
            try:
                watcher = weightwatcher.WeightWatcher(model=model)
                return watcher.analyze(layers=ids, plot=False, savefig=False, randomize=False, mp_fit=False,
                                       vectors=False, detX=False, fix_fingers=False, fit="PL",
                                       pl_package="ww")
            finally:
                sys.stdout = old

    def run_ours(model_or_src):
        return analyze_spectrum(model_or_src, layers=layers, cache=SVDCache(enabled=False), quiet=True)

    # secondary figure: lmscope on a source opened beforehand (WW's model is in memory before its clock
    # starts; opening a GGUF file, for one, takes seconds of header parsing in the gguf package)
    t0 = time.perf_counter()
    opened = open_model(args.model)
    open_s = time.perf_counter() - t0
    t_ww, t_ours, t_open = [], [], []
    details = res = None
    for i in range(args.repeat):
        t0 = time.perf_counter()
        details = run_ww()
        t_ww.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = run_ours(args.model)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res_open = run_ours(opened)
        t_open.append(time.perf_counter() - t0)
        print(f"  run {i + 1}/{args.repeat}: WeightWatcher {t_ww[-1]:.2f} s, lmscope {t_ours[-1]:.2f} s "
              f"(source already open: {t_open[-1]:.2f} s)", flush=True)
    assert res_open.table["spectral_norm"].equals(res.table["spectral_norm"])

    # ---- line the rows up ------------------------------------------------------------------------
    ours = res.table.set_index("key")
    ww = details.assign(key=details["layer_id"].map(key_of_id)).set_index("key")
    keys = [k for k in ours.index if k in ww.index]
    missing = sorted(set(ours.index) ^ set(ww.index))
    assert not missing, f"matrices seen by only one of the two: {missing[:6]}"
    assert len(keys) == len(ids), (len(keys), len(ids))

    sv_ours = ours.loc[keys, "spectral_norm"].to_numpy(float)
    sv_ww = ww.loc[keys, "sv_max"].to_numpy(float)
    lam_ww = ww.loc[keys, "lambda_max"].to_numpy(float)
    rel_sv = float(np.max(np.abs(sv_ww - sv_ours) / sv_ours))
    rel_lam = float(np.max(np.abs(lam_ww - sv_ours**2) / sv_ours**2))
    ratio_lam = lam_ww / sv_ours**2
    same_matrices = rel_sv < 1e-3
    print(f"check: {len(keys)} matrices; WW sv_max vs lmscope spectral_norm: max rel. diff {rel_sv:.1e}; "
          f"WW lambda_max / spectral_norm^2 = {ratio_lam.min():.6f}..{ratio_lam.max():.6f} "
          f"(-> WW's ESD is sv^2 of W unnormalized) -> {'SAME MATRICES' if same_matrices else 'DIFFERENT'}")
    assert same_matrices, "WeightWatcher and lmscope are not looking at the same matrices"

    a_ours = ours.loc[keys, "alpha"].to_numpy(float)
    a_ww = ww.loc[keys, "alpha"].to_numpy(float)
    a_ww = np.where(a_ww <= 0, np.nan, a_ww)  # WW marks failed fits with -1
    # diagnostic: lmscope's own eigenvalues refitted with WW's tail minimum (2 points)
    a_mt2, tail_ours, tail_ww = [], [], []
    for k in keys:
        s = np.asarray(res.values[k], dtype=np.float64)
        lam = s**2
        fit2 = powerlaw_fit(lam[lam > 1e-5], min_tail=2)
        a_mt2.append(fit2["alpha"])
        tail_ours.append(int(ours.loc[k, "tail_size"]))
        tail_ww.append(int(ww.loc[k, "num_pl_spikes"]))  # WW: len(evals[evals >= xmin])
    a_mt2 = np.array(a_mt2)

    def agreement(x, y):
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        d = np.abs(x - y)
        return {"n": int(ok.sum()), "n_missing": int((~ok).sum()),
                "pearson": float(np.corrcoef(x, y)[0, 1]) if len(x) > 2 else math.nan,
                "spearman": float(stats.spearmanr(x, y).statistic) if len(x) > 2 else math.nan,
                "median_abs_diff": float(np.median(d)), "mean_diff": float(np.mean(x - y)),
                "max_abs_diff": float(d.max()), "within_0.1": float(np.mean(d <= 0.1)),
                "within_0.5": float(np.mean(d <= 0.5))}

    agree = agreement(a_ww, a_ours)
    agree_mt2 = agreement(a_ww, a_mt2)
    n_short = int(sum(t < 10 for t in tail_ww))

    # ---- report ----------------------------------------------------------------------------------
    best_ww, best_ours, best_open = min(t_ww), min(t_ours), min(t_open)
    scope = f"{args.model}, " + (f"layers {layers}" if layers else "all layers")
    ratio = best_ww / best_ours
    summary = [
        ["matrices compared", len(keys), scope],
        ["WeightWatcher analyze (best of runs)", f"{best_ww:.2f} s", "model already in memory; load "
         f"{load_s:.1f} s not counted; runs: " + ", ".join(f"{t:.2f}" for t in t_ww)],
        ["lmscope analyze_spectrum (best of runs)", f"{best_ours:.2f} s",
         "reads each matrix from disk; runs: " + ", ".join(f"{t:.2f}" for t in t_ours)],
        ["time ratio WW / lmscope", f"{ratio:.2f}x", ""],
        ["lmscope, source opened beforehand", f"{best_open:.2f} s", f"open_model {open_s:.2f} s not counted; "
         "runs: " + ", ".join(f"{t:.2f}" for t in t_open)],
        ["time ratio WW / lmscope (source open)", f"{best_ww / best_open:.2f}x", "both start from an opened "
         "model"],
        ["largest singular value agrees", "yes" if same_matrices else "NO",
         f"max rel. diff {rel_sv:.1e}; WW lambda_max = sv_max^2 "
         f"(max rel. diff vs spectral_norm^2 {rel_lam:.1e})"],
        ["alpha Pearson / Spearman", f"{agree['pearson']:.3f} / {agree['spearman']:.3f}",
         f"{agree['n']} matrices with both fits ({agree['n_missing']} missing)"],
        ["alpha median |WW - lmscope|", f"{agree['median_abs_diff']:.3g}",
         f"mean WW - lmscope {agree['mean_diff']:+.3g}, max {agree['max_abs_diff']:.3g}"],
        ["alpha within 0.1 / within 0.5", f"{agree['within_0.1']:.0%} / {agree['within_0.5']:.0%}", ""],
        ["WW tails shorter than 10 eigenvalues", f"{n_short} of {len(keys)}",
         "lmscope requires >= 10 (MIN_TAIL)"],
        ["alpha, lmscope refit with min_tail=2", f"within 0.1: {agree_mt2['within_0.1']:.0%}",
         f"Pearson {agree_mt2['pearson']:.3f}, median |diff| {agree_mt2['median_abs_diff']:.3g}, "
         f"max {agree_mt2['max_abs_diff']:.3g}"],
    ]
    print()
    print(table(summary, ["quantity", "value", "detail"]))

    per = []
    for i, k in enumerate(keys):
        per.append({"key": k, "module": module_of_key[k], "rows": int(ours.loc[k, "rows"]),
                    "cols": int(ours.loc[k, "cols"]), "alpha_ww": a_ww[i], "alpha_lmscope": a_ours[i],
                    "alpha_lmscope_min_tail2": a_mt2[i], "tail_ww": tail_ww[i], "tail_lmscope": tail_ours[i],
                    "xmin_ww": float(ww.loc[k, "xmin"]), "xmin_lmscope": float(ours.loc[k, "xmin"]),
                    "sv_max_ww": sv_ww[i], "spectral_norm_lmscope": sv_ours[i], "lambda_max_ww": lam_ww[i]})
    diff = np.nan_to_num(np.abs(a_ww - a_ours), nan=np.inf)
    show = list(range(min(len(keys), max(args.rows // 2, 1))))
    show += [int(i) for i in np.argsort(-diff) if int(i) not in show][: max(args.rows - len(show), 0)]
    prow = [[p["key"], f"{p['rows']}x{p['cols']}", f"{p['alpha_ww']:.3f}", f"{p['alpha_lmscope']:.3f}",
             f"{p['alpha_lmscope_min_tail2']:.3f}", p["tail_ww"], p["tail_lmscope"], f"{p['sv_max_ww']:.4f}",
             f"{p['spectral_norm_lmscope']:.4f}"] for p in (per[i] for i in show)]
    pheader = ["key", "shape", "alpha WW", "alpha lmscope", "lmscope min_tail=2", "tail WW", "tail lmscope",
               "sv_max WW", "spectral_norm lmscope"]
    n_first = min(len(keys), max(args.rows // 2, 1))
    print(f"\nper matrix (first {n_first}, then the largest alpha differences):")
    print(table(prow, pheader))

    result_name = NAME if args.model == "minilm-l6" else f"{NAME}-{args.model}"
    path = write_result(result_name, {
        "benchmark": NAME, "command": command_line(), "size": args.size, "model": args.model,
        "layers": layers, "machine": info,
        "measures": "time of WeightWatcher.analyze (power-law fit only) vs lmscope analyze_spectrum on the "
                    "same matrices of one model, and the agreement of their per-matrix alpha and top "
                    "singular value",
        "ww_settings": {"plot": False, "savefig": False, "randomize": False, "mp_fit": False,
                        "vectors": False,
                        "detX": False, "fix_fingers": False, "fit": "PL", "pl_package": "ww",
                        "layers": "the lmscope-analyzed nn.Linear modules, by named_modules() position"},
        "ww_esd": "eigenvalues of W^T W = sv^2 of W as stored, float64 SciPy SVD, not divided by N "
                  "(normalize=False), eigenvalues <= 1e-5 dropped; xmin scanned over all eigenvalues but "
                  "the largest (tail >= 2)",
        "model_load_s": load_s, "ww_times_s": t_ww, "lmscope_times_s": t_ours,
        "ww_best_s": best_ww, "lmscope_best_s": best_ours, "ratio_ww_to_lmscope": ratio,
        "open_model_s": open_s, "lmscope_opened_times_s": t_open, "lmscope_opened_best_s": best_open,
        "ratio_ww_to_lmscope_opened": best_ww / best_open,
        "results_equal": same_matrices, "sv_max_max_rel_diff": rel_sv, "lambda_max_max_rel_diff": rel_lam,
        "alpha_agreement": agree, "alpha_agreement_lmscope_min_tail2": agree_mt2,
        "ww_tails_shorter_than_10": n_short, "per_matrix": per,
        "table": {"header": ["quantity", "value", "detail"], "rows": summary},
        "per_matrix_table": {"header": pheader, "rows": prow},
    })
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
