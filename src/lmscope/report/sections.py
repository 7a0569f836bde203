"""Report sections for each result type: files (CSV/JSON/PNG) plus their part of ``index.html``."""

from __future__ import annotations

import numpy as np

from lmscope._io import atomic_path, write_json
from lmscope.report.html import Report
from lmscope.report.plots import (
    plot_intruder_heatmap,
    plot_metric_heatmap,
    plot_similarity,
    plot_singular_values,
)


def _csv(df, path):
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def spectrum_section(report: Report, result, metric: str = "alpha", prefix: str = "spectrum") -> None:
    """Spectrum table, singular values, curves per role and a layer x role heatmap of ``metric``."""
    out = report.out
    cols = [c for c in result.table.columns if c not in ("name",)]
    _csv(result.table, out / f"{prefix}.csv")
    write_json(out / f"{prefix}.json", result.to_dict())
    with atomic_path(out / f"{prefix}_singular_values.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: v for k, v in result.values.items()})
    report.heading(f"Weight spectrum: {result.model}")
    report.kv(result.summary())
    curves = plot_singular_values(result.values, result.table, out / f"{prefix}_singular_values.png",
                                  title=f"{result.model}: singular values per role across layers")
    heat = plot_metric_heatmap(result.table, metric, out / f"{prefix}_{metric}_heatmap.png",
                               title=f"{result.model}: {metric} per layer and role")
    report.image(curves, "Normalized singular values s_i/s_1 per matrix, colored by layer.")
    report.image(heat, f"{metric} per layer and role. Alpha < 2 reads as over-trained, > 6 as under-trained.")
    report.table(result.table[cols], max_rows=40)
    report.link(out / f"{prefix}.csv", f"{prefix}.csv (all matrices)")


def intruder_section(report: Report, result, matrix: str | None = None, prefix: str = "intruders",
                     extra: dict | None = None) -> None:
    """Intruder counts per matrix, per layer, per role, the heatmap and the similarity figure."""
    out = report.out
    _csv(result.table, out / f"{prefix}.csv")
    write_json(out / f"{prefix}.json", result.to_dict())
    report.heading(f"Intruder dimensions: {result.tuned} vs {result.base}")
    report.kv({**result.summary(), **(extra or {})})
    heat = plot_intruder_heatmap(result.table, out / f"{prefix}_heatmap.png",
                                 title=f"Intruders among the top-{result.k} (eps={result.eps})")
    report.image(heat, "Number of intruder dimensions per layer and role.")
    key = matrix or result.signature_matrix()
    if key in result.similarity:
        sim_png = plot_similarity(result.similarity[key], key, result.eps, out / f"{prefix}_similarity_{key}.png")
        report.image(sim_png, f"{key}: cosine similarity between the tuned matrix's top-{result.k} left singular "
                              "vectors (rows) and the base's (columns). A row with no dark cell is an intruder.")
    by_layer = result.by_layer()
    report.table(by_layer, max_rows=80)
    cols = ["key", "layer", "role", "n_intruders", "min_max_cos", "intruder_singular_values", "delta_fro"]
    report.table(result.table[cols], max_rows=40)
    report.link(out / f"{prefix}.csv", f"{prefix}.csv (all matrices, with the k max-cosine values)")


def laser_section(report: Report, result, prefix: str = "laser", command: str | None = None) -> None:
    """LASER search: summary, Δ heatmap per role, the table of every config, the composition trials."""
    import pandas as pd

    from lmscope._io import write_jsonl
    from lmscope.report.plots import plot_laser_heatmaps

    out = report.out
    df = result.frame()
    _csv(df, out / f"{prefix}_configs.csv")
    write_json(out / f"{prefix}.json", result.to_dict())
    for name, rows in result.per_example.items():
        write_jsonl(out / f"{prefix}_test_examples_{name}.jsonl", rows)
    report.heading(f"LASER on {result.model}: {result.task}")
    if command:
        report.code(command)
    report.code("\n".join(result.summary_lines()))
    metric = "d_accuracy" if result.kind != "text" else "d_logloss"
    heat = plot_laser_heatmaps(df, out / f"{prefix}_heatmap.png", metric=metric)
    report.image(heat, "Change against the unmodified model on the validation split, per layer and kept fraction "
                       "(one panel per role).")
    rows = [{"model": "unmodified", **{f"test_{k}": v for k, v in result.base["test"].items()}}]
    if result.best:
        b = result.best
        rows.append({"model": f"best single: {b['layer']}:{b['role']}:{b['keep']:g}",
                     **{f"test_{k}": v for k, v in b["test"].items()}})
    if result.composed:
        c = result.composed
        what = ", ".join(f"{r['layer']}:{r['role']}:{r['keep']:g}" for r in c["reductions"]) or "none kept"
        rows.append({"model": f"composed: {what}", **{f"test_{k}": v for k, v in c["test"].items()}})
    report.table(pd.DataFrame(rows))
    if result.composed and result.composed["trials"]:
        trials = pd.DataFrame([{"layer": t["layer"], "role": t["role"], "keep": t["keep"], "kept": t["kept"],
                                **{f"val_{k}": v for k, v in t["val"].items()}} for t in result.composed["trials"]])
        report.text("Greedy composition (validation): each candidate on top of those kept so far.")
        report.table(trials)
    cols = [c for c in ("layer", "role", "keep", "rank", "accuracy", "d_accuracy", "logloss", "d_logloss")
            if c in df.columns]
    report.table(df.sort_values(["layer", "role", "keep"], ascending=[True, True, False])[cols], max_rows=40)
    report.link(out / f"{prefix}_configs.csv", f"{prefix}_configs.csv (every config, validation split)")
