"""lmscope spectrum metrics vs WeightWatcher on the same model, in one run.

Two start points, each timed separately, both sides with the same thread count (``--threads``: the
OpenMP/BLAS thread variables and ``torch.set_num_threads`` for both; lmscope analyzes that many matrices
at once, each with single-threaded BLAS, WeightWatcher gives its BLAS that many threads):

* memory: both start from the same loaded model (``open_model(name).load_model()``, matrices in memory):
  ``WeightWatcher(model=model).analyze(layers=<ids>, ...)`` vs ``analyze_spectrum(model)``.
* disk: both start from the same files (the model's Hugging Face directory; for a GGUF model, the
  directory lmscope converts it to once, before any clock starts): WeightWatcher's clock includes
  ``from_pretrained``, lmscope's reads each matrix from the files. For a GGUF model lmscope is also
  timed reading the GGUF file itself (dequantizing each matrix), as a third figure.

WeightWatcher settings: plots, randomization, MP fits, eigenvector analysis and detX off, the default
power-law fit (``fit="PL"``, its own fitter) kept; ``layers`` restricts it to the modules lmscope
analyzes (embeddings and poolers excluded), so both see the same matrices. lmscope's SVD cache is off.
Each start point is timed ``--repeat`` times, alternating which side goes first; the median and the best
of each side and their ratios WW / lmscope are reported (wall time: the target), with the load average
before and after, and the ratio of the median process CPU times (less sensitive to other work on the machine).

Agreement: the largest singular value of every matrix (same matrices), and alpha within 0.1 on every
matrix where both fit a tail of at least 10 eigenvalues (the target); Pearson/Spearman and the rest.

How WW 0.7.x builds its ESD (read from its source): eigenvalues = squared singular values of W as
stored (``W.astype(float)``, float64 SciPy SVD), *not* divided by N (``normalize`` defaults to False;
``glorot_fix`` off). Eigenvalues <= 1e-5 are dropped before the fit. Its fitter scans every eigenvalue
but the largest as xmin (tails down to 2 points; a separate small-N fit below 20 eigenvalues) and picks
the KS minimum; lmscope uses the same MLE and KS distance but requires a tail of at least 10
eigenvalues, and takes eigenvalues from a float64 Gram matrix (``lmscope.spectral.svd.singular_values``).
The script also refits lmscope's eigenvalues with ``powerlaw_fit(min_tail=2)`` to show how much of the
remaining alpha disagreement that one choice explains.

Where the time goes (after the timed runs, one pass over the same in-memory matrices, each matrix
timed for both sides back to back): WeightWatcher's SVD call exactly as it makes it
(``RMT_Util.svd_vals`` on ``W.astype(float)``) against lmscope's three phases, the float64 Gram
matrix, its eigenvalues (``numpy.linalg.eigvalsh``) and the summaries and power-law fit
(``spectrum_metrics``). WW's median time over lmscope's Gram + eigenvalue time is the ratio lmscope
could reach if all its other work were free: the ceiling its linear algebra sets.

    .venv/bin/python benchmarks/bench_weightwatcher.py [--model minilm-l6|smollm2-135m] [--threads N]
        [--repeat 5] [--size small|full] [--no-breakdown]

Results go to ``results/bench_weightwatcher[-MODEL][-threadsN].json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import math
import os
import statistics
import time
import warnings

from _common import command_line, machine_info, table, write_result

NAME = "bench_weightwatcher"
SMALL_LAYERS = [0, 1]
TARGET = 5.0          # WW / lmscope, medians, both models
ALPHA_TOL = 0.1       # |alpha WW - alpha lmscope| on every matrix where both tails have >= MIN_TAIL points
MIN_TAIL = 10


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["small", "full"], default="full",
                    help=f"small: layers {SMALL_LAYERS} only (WW's layers= filter); full: every layer")
    ap.add_argument("--model", default="minilm-l6", choices=["minilm-l6", "smollm2-135m"])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each side per start point (>= 1)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for both sides (default 1: on a machine busy with other work, BLAS thread "
                         "pools that wait for each other slow WeightWatcher's SVDs down far more than the cores "
                         "speed them up)")
    ap.add_argument("--rows", type=int, default=12, help="rows of the per-matrix table printed")
    ap.add_argument("--no-breakdown", action="store_true",
                    help="skip the untimed-for-the-target pass that splits each side's time into phases")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    threads = max(1, args.threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # before numpy/scipy/torch
        os.environ[var] = str(threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")

    import numpy as np
    import torch
    from scipy import stats

    torch.set_num_threads(threads)
    logging.disable(logging.WARNING)
    import weightwatcher

    from lmscope.models import HFDirSource, open_model
    from lmscope.models.roles import classify
    from lmscope.spectral import SVDCache, analyze_spectrum
    from lmscope.spectral.metrics import powerlaw_fit

    info = machine_info(threads=threads)
    info["weightwatcher"] = weightwatcher.__version__
    load_before = os.getloadavg()
    src = open_model(args.model)
    gguf = src.kind == "gguf"
    model_dir = src.hf_dir() if gguf else src.path        # the files both sides read (conversion untimed)
    t0 = time.perf_counter()
    model = src.load_model()
    model.eval()
    load_s = time.perf_counter() - t0
    layers = SMALL_LAYERS if args.size == "small" else None

    # WW's layer ids are the positions in model.named_modules(); keep the modules lmscope analyzes
    ids, key_of_id, module_of_key = [], {}, {}
    for idx, (name, mod) in enumerate(model.named_modules()):
        if not isinstance(mod, torch.nn.Linear):
            continue
        m = classify(name + ".weight", src.family)
        if m is None or m.fused or (layers is not None and m.layer not in layers):
            continue
        key = f"{m.layer}.{m.role}"
        ids.append(idx)
        key_of_id[idx] = key
        module_of_key[key] = name
    print(f"{args.model}: {type(model).__name__}, {len(ids)} matrices "
          f"({'layers ' + str(layers) if layers else 'all layers'}); {threads} thread(s) for both; "
          f"model load {load_s:.1f} s; load average {load_before[0]:.2f}")

    def ww_analyze(m):
        with contextlib.redirect_stdout(io.StringIO()):  # WW prints a banner and progress to stdout
            watcher = weightwatcher.WeightWatcher(model=m)
            return watcher.analyze(layers=ids, plot=False, savefig=False, randomize=False, mp_fit=False,
                                   vectors=False, detX=False, fix_fingers=False, fit="PL", pl_package="ww")

    def ww_disk():
        m = HFDirSource(model_dir).load_model()
        m.eval()
        return ww_analyze(m)

    def ours(what):
        return analyze_spectrum(what, layers=layers, cache=SVDCache(enabled=False), quiet=True, workers=threads)

    sides = {  # (start point, side) -> function
        ("memory", "ww"): lambda: ww_analyze(model),
        ("memory", "lmscope"): lambda: ours(model),
        ("disk", "ww"): ww_disk,
        ("disk", "lmscope"): lambda: ours(model_dir),
    }
    if gguf:
        sides[("gguf", "lmscope")] = lambda: ours(args.model)
    times = {k: [] for k in sides}
    cpu = {k: [] for k in sides}  # process CPU time: the work done, whatever else the machine runs
    out = {}
    for i in range(max(1, args.repeat)):
        line = []
        for point in ("memory", "disk", "gguf"):
            order = ["ww", "lmscope"] if i % 2 == 0 else ["lmscope", "ww"]
            for side in order:
                if (point, side) not in sides:
                    continue
                gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                out[(point, side)] = sides[(point, side)]()
                times[(point, side)].append(time.perf_counter() - t0)
                cpu[(point, side)].append(time.process_time() - c0)
                line.append(f"{point}/{side} {times[(point, side)][-1]:.2f} s")
        print(f"  run {i + 1}/{args.repeat}: " + ", ".join(line), flush=True)
    load_after = os.getloadavg()
    phases = None if args.no_breakdown else time_phases(model, module_of_key, [key_of_id[i] for i in ids])

    # ---- line the rows up ------------------------------------------------------------------------
    res = out[("memory", "lmscope")]
    details = out[("memory", "ww")]
    same_ours = all(out[(p, "lmscope")].table.equals(res.table) for p in ("disk",))
    gguf_max_alpha = None
    if gguf:  # the GGUF file dequantized by lmscope vs the converted directory: same numbers, or nearly
        g = out[("gguf", "lmscope")].table.set_index("key")
        d = res.table.set_index("key")
        gguf_max_alpha = float(np.nanmax(np.abs(g["alpha"] - d.loc[g.index, "alpha"])))
    ww_disk_details = out[("disk", "ww")]
    same_ww = bool(np.allclose(ww_disk_details["alpha"].to_numpy(float), details["alpha"].to_numpy(float),
                               equal_nan=True))
    ours_t = res.table.set_index("key")
    ww = details.assign(key=details["layer_id"].map(key_of_id)).set_index("key")
    keys = [k for k in ours_t.index if k in ww.index]
    missing = sorted(set(ours_t.index) ^ set(ww.index))
    assert not missing, f"matrices seen by only one of the two: {missing[:6]}"
    assert len(keys) == len(ids), (len(keys), len(ids))

    sv_ours = ours_t.loc[keys, "spectral_norm"].to_numpy(float)
    sv_ww = ww.loc[keys, "sv_max"].to_numpy(float)
    lam_ww = ww.loc[keys, "lambda_max"].to_numpy(float)
    rel_sv = float(np.max(np.abs(sv_ww - sv_ours) / sv_ours))
    rel_lam = float(np.max(np.abs(lam_ww - sv_ours**2) / sv_ours**2))
    same_matrices = rel_sv < 1e-3
    print(f"check: {len(keys)} matrices; WW sv_max vs lmscope spectral_norm: max rel. diff {rel_sv:.1e} -> "
          f"{'SAME MATRICES' if same_matrices else 'DIFFERENT'}; lmscope memory == disk: {same_ours}; "
          f"WW memory == disk: {same_ww}")
    assert same_matrices, "WeightWatcher and lmscope are not looking at the same matrices"

    a_ours = ours_t.loc[keys, "alpha"].to_numpy(float)
    a_ww = ww.loc[keys, "alpha"].to_numpy(float)
    a_ww = np.where(a_ww <= 0, np.nan, a_ww)  # WW marks failed fits with -1
    a_mt2, tail_ww = [], []
    for k in keys:
        lam = np.asarray(res.values[k], dtype=np.float64) ** 2
        a_mt2.append(powerlaw_fit(lam[lam > 1e-5], min_tail=2)["alpha"])
        tail_ww.append(int(ww.loc[k, "num_pl_spikes"]))  # WW: len(evals[evals >= xmin])
    a_mt2 = np.array(a_mt2)
    tail_ours = ours_t.loc[keys, "tail_size"].to_numpy(int)
    tail_ww = np.array(tail_ww)

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
    both = (tail_ww >= MIN_TAIL) & (tail_ours >= MIN_TAIL) & np.isfinite(a_ww) & np.isfinite(a_ours)
    diff_both = np.abs(a_ww - a_ours)[both]
    alpha_ok = bool(both.any() and (diff_both <= ALPHA_TOL).all())
    worst = keys[int(np.flatnonzero(both)[np.argmax(diff_both)])] if both.any() else None
    print(f"agreement check: {int(both.sum())} of {len(keys)} matrices where both fit a tail of >= {MIN_TAIL} "
          f"eigenvalues; max |alpha WW - alpha lmscope| there {diff_both.max():.2e} (at {worst}); "
          f"within {ALPHA_TOL} on every one: {'PASS' if alpha_ok else 'FAIL'}")

    # ---- report ----------------------------------------------------------------------------------
    def med(k):
        return statistics.median(times[k])

    def runs(k):
        return ", ".join(f"{t:.2f}" for t in times[k])

    def paired(p, q="ww"):  # each run's WW time over the lmscope time measured next to it
        return statistics.median(a / b for a, b in zip(times[(q, "ww")], times[(p, "lmscope")], strict=True))

    ratio = {p: {"median": med((p, "ww")) / med((p, "lmscope")),
                 "best": min(times[(p, "ww")]) / min(times[(p, "lmscope")]),
                 "median_paired": paired(p, p)} for p in ("memory", "disk")}
    if gguf:
        ratio["gguf"] = {"median": med(("disk", "ww")) / med(("gguf", "lmscope")),
                         "best": min(times[("disk", "ww")]) / min(times[("gguf", "lmscope")]),
                         "median_paired": paired("gguf", "disk")}
    cpu_ratio = {p: statistics.median(cpu[(p, "ww")]) / statistics.median(cpu[(p, "lmscope")])
                 for p in ("memory", "disk")}
    target_met = alpha_ok and all(ratio[p]["median"] >= TARGET for p in ("memory", "disk"))
    scope = f"{args.model}, " + (f"layers {layers}" if layers else "all layers")
    load_txt = f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1-min load average, {os.cpu_count()} CPUs)"
    summary = [
        ["matrices compared", len(keys), scope],
        ["threads (both sides)", threads, "one matrix at a time on each side" if threads == 1 else
         f"lmscope: {threads} matrices at once, 1 BLAS thread each; WW: {threads} BLAS threads"],
        ["machine load", f"{load_before[0]:.2f} / {load_after[0]:.2f}", load_txt],
        ["memory: WeightWatcher analyze (median / best)", f"{med(('memory', 'ww')):.2f} / "
         f"{min(times[('memory', 'ww')]):.2f} s", f"same loaded model; runs: {runs(('memory', 'ww'))}"],
        ["memory: lmscope analyze_spectrum (median / best)", f"{med(('memory', 'lmscope')):.2f} / "
         f"{min(times[('memory', 'lmscope')]):.2f} s", f"runs: {runs(('memory', 'lmscope'))}"],
        ["memory: ratio WW / lmscope (median / best)",
         f"{ratio['memory']['median']:.2f}x / {ratio['memory']['best']:.2f}x", f"target >= {TARGET:.0f}x; median of "
         f"the runs' own ratios {ratio['memory']['median_paired']:.2f}x"],
        ["disk: WeightWatcher from_pretrained + analyze (median / best)", f"{med(('disk', 'ww')):.2f} / "
         f"{min(times[('disk', 'ww')]):.2f} s", f"{model_dir.name}; runs: {runs(('disk', 'ww'))}"],
        ["disk: lmscope analyze_spectrum (median / best)", f"{med(('disk', 'lmscope')):.2f} / "
         f"{min(times[('disk', 'lmscope')]):.2f} s", f"same files; runs: {runs(('disk', 'lmscope'))}"],
        ["disk: ratio WW / lmscope (median / best)",
         f"{ratio['disk']['median']:.2f}x / {ratio['disk']['best']:.2f}x", f"target >= {TARGET:.0f}x; median of "
         f"the runs' own ratios {ratio['disk']['median_paired']:.2f}x"],
    ]
    if gguf:
        summary += [
            ["GGUF: lmscope from the .gguf file (median / best)", f"{med(('gguf', 'lmscope')):.2f} / "
             f"{min(times[('gguf', 'lmscope')]):.2f} s", f"dequantizes each matrix; runs: {runs(('gguf', 'lmscope'))}"],
            ["GGUF: ratio WW (disk) / lmscope (.gguf) (median / best)",
             f"{ratio['gguf']['median']:.2f}x / {ratio['gguf']['best']:.2f}x",
             f"alpha vs the converted files: max |diff| {gguf_max_alpha:.1e}"],
        ]
    summary += [
        ["CPU time: ratio WW / lmscope (memory / disk medians)",
         f"{cpu_ratio['memory']:.2f}x / {cpu_ratio['disk']:.2f}x",
         f"process CPU seconds, less sensitive to other load; memory medians "
         f"{statistics.median(cpu[('memory', 'ww')]):.2f} / {statistics.median(cpu[('memory', 'lmscope')]):.2f} s, "
         f"disk {statistics.median(cpu[('disk', 'ww')]):.2f} / {statistics.median(cpu[('disk', 'lmscope')]):.2f} s"],
        ["largest singular value agrees", "yes" if same_matrices else "NO",
         f"max rel. diff {rel_sv:.1e}; WW lambda_max = sv_max^2 (max rel. diff vs spectral_norm^2 {rel_lam:.1e})"],
        [f"alpha within {ALPHA_TOL} where both tails >= {MIN_TAIL}", "PASS" if alpha_ok else "FAIL",
         f"{int(both.sum())} of {len(keys)} matrices; max |diff| {diff_both.max():.2e}"],
        ["alpha Pearson / Spearman (all)", f"{agree['pearson']:.3f} / {agree['spearman']:.3f}",
         f"{agree['n']} matrices with both fits ({agree['n_missing']} missing)"],
        ["alpha median |WW - lmscope| (all)", f"{agree['median_abs_diff']:.3g}",
         f"mean WW - lmscope {agree['mean_diff']:+.3g}, max {agree['max_abs_diff']:.3g}"],
        ["alpha within 0.1 / within 0.5 (all)", f"{agree['within_0.1']:.0%} / {agree['within_0.5']:.0%}", ""],
        ["WW tails shorter than 10 eigenvalues", f"{int((tail_ww < MIN_TAIL).sum())} of {len(keys)}",
         "lmscope requires >= 10 (MIN_TAIL)"],
        ["alpha, lmscope refit with min_tail=2", f"within 0.1: {agree_mt2['within_0.1']:.0%}",
         f"Pearson {agree_mt2['pearson']:.3f}, median |diff| {agree_mt2['median_abs_diff']:.3g}, "
         f"max {agree_mt2['max_abs_diff']:.3g}"],
    ]
    if phases is not None:
        lin = phases["gram_s"] + phases["eigvalsh_s"]
        ceiling = med(("memory", "ww")) / lin
        phases["ceiling_memory_ratio"] = ceiling
        summary += [
            ["time split: WeightWatcher's SVDs", f"{phases['ww_svd_s']:.2f} s",
             f"float64 SciPy SVD of each matrix, values only, as WW calls it; "
             f"{phases['ww_svd_s'] / med(('memory', 'ww')):.0%} of WW's memory median"],
            ["time split: lmscope Gram / eigvalsh / fit", f"{phases['gram_s']:.2f} / {phases['eigvalsh_s']:.2f} / "
             f"{phases['metrics_s']:.2f} s", f"Gram + eigvalsh {lin / med(('memory', 'lmscope')):.0%} of lmscope's "
             f"memory median; SVD / (Gram + eigvalsh) {phases['ww_svd_s'] / lin:.2f}x"],
            ["ceiling: WW memory median / lmscope Gram + eigvalsh", f"{ceiling:.2f}x",
             "the memory ratio if everything but lmscope's linear algebra were free"],
        ]
    print()
    print(table(summary, ["quantity", "value", "detail"]))

    per = []
    for i, k in enumerate(keys):
        per.append({"key": k, "module": module_of_key[k], "rows": int(ours_t.loc[k, "rows"]),
                    "cols": int(ours_t.loc[k, "cols"]), "alpha_ww": a_ww[i], "alpha_lmscope": a_ours[i],
                    "alpha_lmscope_min_tail2": a_mt2[i], "tail_ww": int(tail_ww[i]),
                    "tail_lmscope": int(tail_ours[i]), "xmin_ww": float(ww.loc[k, "xmin"]),
                    "xmin_lmscope": float(ours_t.loc[k, "xmin"]), "sv_max_ww": sv_ww[i],
                    "spectral_norm_lmscope": sv_ours[i], "lambda_max_ww": lam_ww[i]})
    diff = np.nan_to_num(np.abs(a_ww - a_ours), nan=np.inf)
    n_first = min(len(keys), max(args.rows // 2, 1))
    show = list(range(n_first))
    show += [int(i) for i in np.argsort(-diff) if int(i) not in show][: max(args.rows - len(show), 0)]
    prow = [[p["key"], f"{p['rows']}x{p['cols']}", f"{p['alpha_ww']:.3f}", f"{p['alpha_lmscope']:.3f}",
             f"{p['alpha_lmscope_min_tail2']:.3f}", p["tail_ww"], p["tail_lmscope"], f"{p['sv_max_ww']:.4f}",
             f"{p['spectral_norm_lmscope']:.4f}"] for p in (per[i] for i in show)]
    pheader = ["key", "shape", "alpha WW", "alpha lmscope", "lmscope min_tail=2", "tail WW", "tail lmscope",
               "sv_max WW", "spectral_norm lmscope"]
    print(f"\nper matrix (first {n_first}, then the largest alpha differences):")
    print(table(prow, pheader))

    result_name = NAME if args.model == "minilm-l6" else f"{NAME}-{args.model}"
    if threads != 1:
        result_name += f"-threads{threads}"
    path = write_result(result_name, {
        "benchmark": NAME, "command": command_line(), "size": args.size, "model": args.model,
        "layers": layers, "machine": info, "threads": threads,
        "load_avg_before": list(load_before), "load_avg_after": list(load_after),
        "measures": "time of WeightWatcher.analyze (power-law fit only) vs lmscope analyze_spectrum on the "
                    "same matrices of one model, from the same loaded model (memory) and from the same files "
                    "(disk), same thread count, alternating runs; and the agreement of their per-matrix "
                    "alpha and top singular value",
        "ww_settings": {"plot": False, "savefig": False, "randomize": False, "mp_fit": False,
                        "vectors": False, "detX": False, "fix_fingers": False, "fit": "PL",
                        "pl_package": "ww",
                        "layers": "the lmscope-analyzed nn.Linear modules, by named_modules() position"},
        "ww_esd": "eigenvalues of W^T W = sv^2 of W as stored, float64 SciPy SVD, not divided by N "
                  "(normalize=False), eigenvalues <= 1e-5 dropped; xmin scanned over all eigenvalues but "
                  "the largest (tail >= 2)",
        "model_dir": str(model_dir), "model_load_s": load_s,
        "times_s": {f"{p}/{s}": v for (p, s), v in times.items()},
        "medians_s": {f"{p}/{s}": med((p, s)) for (p, s) in times},
        "best_s": {f"{p}/{s}": min(v) for (p, s), v in times.items()},
        "cpu_s": {f"{p}/{s}": v for (p, s), v in cpu.items()}, "cpu_ratio_median": cpu_ratio,
        "ratio": ratio, "target_ratio": TARGET, "target_met": target_met,
        "ratio_ww_to_lmscope": ratio["memory"]["median"],
        "results_equal": same_matrices, "lmscope_memory_equals_disk": same_ours, "ww_memory_equals_disk": same_ww,
        "gguf_alpha_max_abs_diff": gguf_max_alpha,
        "sv_max_max_rel_diff": rel_sv, "lambda_max_max_rel_diff": rel_lam,
        "alpha_check": {"tolerance": ALPHA_TOL, "min_tail": MIN_TAIL, "matrices": int(both.sum()),
                        "max_abs_diff": float(diff_both.max()) if both.any() else None, "worst": worst,
                        "passed": alpha_ok},
        "alpha_agreement": agree, "alpha_agreement_lmscope_min_tail2": agree_mt2, "phases": phases,
        "ww_tails_shorter_than_10": int((tail_ww < MIN_TAIL).sum()), "per_matrix": per,
        "table": {"header": ["quantity", "value", "detail"], "rows": summary},
        "per_matrix_table": {"header": pheader, "rows": prow},
    })
    print(f"\nwrote {path}")


def time_phases(model, module_of_key: dict, keys: list[str]) -> dict:
    """Each side's time on the same in-memory matrices, by phase; both sides timed back to back per matrix."""
    import numpy as np
    import torch
    from weightwatcher.RMT_Util import svd_vals

    from lmscope.spectral.metrics import spectrum_metrics
    from lmscope.spectral.svd import _gram64

    modules = dict(model.named_modules())
    tot = {"ww_svd_s": 0.0, "gram_s": 0.0, "eigvalsh_s": 0.0, "metrics_s": 0.0}
    for n, key in enumerate(keys):
        w = modules[module_of_key[key]].weight.detach()
        a = w.to(torch.float32).numpy()
        for side in (("ww", "lmscope") if n % 2 == 0 else ("lmscope", "ww")):
            if side == "ww":
                t0 = time.perf_counter()
                svd_vals(a.astype(float))          # WW: W.astype(float), then its SVD call
                tot["ww_svd_s"] += time.perf_counter() - t0
                continue
            t0 = time.perf_counter()
            g = _gram64(a if a.shape[0] >= a.shape[1] else a.T)
            t1 = time.perf_counter()
            lam = np.linalg.eigvalsh(g)
            t2 = time.perf_counter()
            spectrum_metrics(np.sqrt(np.clip(lam[::-1], 0.0, None)), a.shape)
            t3 = time.perf_counter()
            tot["gram_s"] += t1 - t0
            tot["eigvalsh_s"] += t2 - t1
            tot["metrics_s"] += t3 - t2
    return tot


if __name__ == "__main__":
    main()
