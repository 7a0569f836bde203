"""Report sections for each result type: files (CSV/JSON/PNG) plus their part of ``index.html``."""

from __future__ import annotations

import numpy as np

from lmscope._io import atomic_path, write_json
from lmscope.report.html import Report
from lmscope.report.plots import (
    plot_intruder_heatmap,
    plot_intruders_by_eps,
    plot_max_cos_histogram,
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


def intruder_meaning(result) -> str:
    """One sentence saying what the count means, and what zero means, for this result."""
    vals = result.max_cos_values()
    n, low = len(vals), (float(vals.min()) if len(vals) else float("nan"))
    what = (f"An intruder is one of a tuned matrix's top-{result.k} left singular vectors whose largest |cosine| "
            f"with any base singular vector stays below eps = {result.eps:g}")
    if result.total == 0:
        return (f"{what}; zero means that each of the {n} top-{result.k} directions checked here still has a base "
                f"singular vector with |cos| of at least eps (the worst match is {low:.3f}): at this eps the "
                "fine-tune brought in no new leading direction (the curve below shows from which eps on some "
                "would count).")
    return (f"{what}: {result.total} of the {n} top-{result.k} directions checked here do (in "
            f"{int((result.table['n_intruders'] > 0).sum())} of {len(result.table)} matrices); the lowest match "
            f"is |cos| = {low:.3f}.")


def intruder_section(report: Report, result, matrix: str | None = None, prefix: str = "intruders",
                     extra: dict | None = None) -> None:
    """Intruder counts: what the count means, the count against eps, the distribution of best matches,
    the layer x role heatmap (only when there are intruders), the similarity figure and the tables."""
    out = report.out
    _csv(result.table, out / f"{prefix}.csv")
    write_json(out / f"{prefix}.json", result.to_dict())
    by_eps = result.counts_by_eps()
    _csv(by_eps, out / f"{prefix}_by_eps.csv")
    report.heading(f"Intruder dimensions: {result.tuned} vs {result.base}")
    report.text(intruder_meaning(result))
    report.kv({**result.summary(), **(extra or {})})
    vals = result.max_cos_values()
    curve = plot_intruders_by_eps(by_eps, result.eps, len(vals), out / f"{prefix}_by_eps.png",
                                  title=f"Intruders among the top-{result.k} against eps ({len(result.table)} matrices)")
    report.image(curve, f"Number of intruder dimensions at each eps (all matrices, and per role); the dashed line "
                        f"is the eps of this run ({result.eps:g}). Values: {prefix}_by_eps.csv.")
    hist = plot_max_cos_histogram(vals, result.eps, out / f"{prefix}_max_cos.png")
    report.image(hist, f"Distribution of the best |cos| match of every tuned top-{result.k} vector with the base's "
                       "singular vectors; intruders are those left of the dashed line.")
    if result.total > 0:
        heat = plot_intruder_heatmap(result.table, out / f"{prefix}_heatmap.png",
                                     title=f"Intruders among the top-{result.k} (eps={result.eps})")
        report.image(heat, "Number of intruder dimensions per layer and role.")
    else:
        report.text(f"No layer x role heatmap: every cell would be 0 at eps = {result.eps:g}.", note=True)
    key = matrix or result.signature_matrix()
    if key in result.similarity:
        sim_png = plot_similarity(result.similarity[key], key, result.eps, out / f"{prefix}_similarity_{key}.png")
        chosen = "" if matrix else " (the matrix with the most intruders, or else the lowest best match)"
        report.image(sim_png, f"{key}{chosen}: cosine similarity between the tuned matrix's top-{result.k} left "
                              "singular vectors (rows) and the base's (columns). A row with no dark cell is an "
                              "intruder.")
    by_layer = result.by_layer()
    report.table(by_layer, max_rows=80)
    cols = ["key", "layer", "role", "n_intruders", "min_max_cos", "intruder_singular_values", "delta_fro"]
    report.table(result.table[cols], max_rows=40)
    report.link(out / f"{prefix}.csv", f"{prefix}.csv (all matrices, with the k max-cosine values)")


def laser_verdict(result) -> str:
    """One plain sentence: the unmodified model's validation score and whether any reduction beat it."""
    def score(s: dict) -> str:
        if s.get("accuracy") is not None:
            return f"accuracy {100 * s['accuracy']:.1f}%"
        return f"log-loss {s['logloss']:.4f}"

    base = (f"The unmodified model's validation {score(result.base['val'])} ({result.n_val} examples; test "
            f"{score(result.base['test'])} on {result.n_test}).")
    b = result.best
    if not result.improved:
        return (base + f" No reduction of the {len(result.table)} tried beat it on validation: LASER did not help "
                       "here" + (f" (the best, layer {b['layer']} {b['role']} keep {b['keep']:g}, reached "
                                 f"{score(b['val'])})." if b else "."))
    return (base + f" The best reduction, layer {b['layer']} {b['role']} keep {b['keep']:g}, beat it on validation "
                   f"with {score(b['val'])}; on the held-out test split it scored {score(b['test'])}.")


def laser_study_section(report: Report, result, command: str | None = None) -> None:
    """A LASER study (:func:`lmscope.spectral.laser_study.laser_study`): its summary, and the grid and
    per-resplit tables as CSV beside a JSON of everything."""
    import pandas as pd

    write_json(report.out / "laser_study.json", result.to_dict())
    for name, rows in (("grid", result.grid), ("resplits", result.resplits)):
        pd.DataFrame(rows).to_csv(report.out / f"laser_study_{name}.csv", index=False)
    report.heading(f"LASER study on {result.model}: {result.task}")
    if command:
        report.code(command)
    report.code("\n".join(result.summary_lines()))
    report.text("Tables: laser_study_grid.csv (every config on every scored example, with a paired bootstrap "
                "interval), laser_study_resplits.csv (per resplit: the validation-chosen config and its test "
                "difference), laser_study.json (everything).")


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
    report.text(laser_verdict(result))
    report.code("\n".join(result.summary_lines()))
    metric = "d_accuracy" if result.kind != "text" else "d_logloss"
    heat = plot_laser_heatmaps(df, out / f"{prefix}_heatmap.png", metric=metric)
    report.image(heat, "Change against the unmodified model on the validation split, per layer and kept fraction "
                       "(one panel per role).")
    def cells(entry: dict) -> dict:
        return {**{f"val_{k}": v for k, v in entry["val"].items()}, **{f"test_{k}": v for k, v in entry["test"].items()}}

    rows = [{"model": "unmodified", **cells(result.base)}]
    if result.best:
        b = result.best
        rows.append({"model": f"best single: {b['layer']}:{b['role']}:{b['keep']:g}", **cells(b)})
    if result.composed:
        c = result.composed
        what = ", ".join(f"{r['layer']}:{r['role']}:{r['keep']:g}" for r in c["reductions"]) or "none kept"
        rows.append({"model": f"composed: {what}", **cells(c)})
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


def tree_section(report: Report, result, sentence: int = 0, prefix: str = "trees", command: str | None = None) -> None:
    """Tree projections at one layer: summary, baselines, the chart and tree of one sentence, the table.

    Files: ``{prefix}.jsonl`` (per sentence: bracketed trees, t-score, F1, chart), ``{prefix}.csv``
    (the table), ``{prefix}_summary.json``, ``{prefix}_chart_{sentence}.png`` and
    ``{prefix}_tree_{sentence}.png``.
    """
    import pandas as pd

    from lmscope._io import write_jsonl
    from lmscope.report.plots import plot_sci_chart, plot_tree

    out = report.out
    table = result.table()
    _csv(table, out / f"{prefix}.csv")
    write_jsonl(out / f"{prefix}.jsonl", result.tree_rows(charts=True))
    write_json(out / f"{prefix}_summary.json", {**result.summary(), "parsing": result.parsing,
                                                  "baseline_parsing": result.baseline_parsing})
    report.heading(f"Tree projections: {result.model}, layer {result.layer}")
    if command:
        report.code(command)
    summ = result.summary()
    summ.pop("baseline_f1", None)
    summ.pop("cost", None)
    report.kv(summ)
    if result.has_gold:
        rows = [{"trees": "induced (greedy over the chart)", **_prf_row(result.parsing)}]
        rows += [{"trees": name, **_prf_row(p)} for name, p in result.baseline_parsing.items()]
        report.text("Unlabeled parsing against the gold trees; precision and recall pooled over the corpus "
                    "(brackets: every internal node, the whole sentence included, single words excluded).")
        report.table(pd.DataFrame(rows))
    if result.causal:
        report.text("For a causal LM a span that starts at the first word sees, at every position, what the "
                    "ordinary pass sees, so its s is 1; the top split is therefore chosen by its right part alone.",
                    note=True)
    s = result.sentences[sentence]
    chart_png = plot_sci_chart(s.chart, s.words, out / f"{prefix}_chart_{sentence}.png",
                               title=f"sentence {sentence}: s(i, j) at layer {result.layer}")
    tree_png = plot_tree(s.tree, out / f"{prefix}_tree_{sentence}.png", gold=s.gold,
                         title=f"sentence {sentence}: induced tree (t-score {s.t_score:.3f})")
    report.heading(f"Sentence {sentence}: {' '.join(s.words)}", level=3)
    report.image(chart_png, "Span similarity s(i, j) = 1 - SCI: the context-free vector of words i..j (keys "
                            "outside the span masked) against the contextual one. High = composed like a "
                            "constituent.")
    report.image(tree_png, "The greedy tree: every span split where s(left) + s(right) is largest"
                           + (" (green: also a gold bracket)." if s.gold is not None else "."))
    report.code(f"induced: {s.bracketed}" + (f"\ngold:    {s.gold_bracketed}" if s.gold is not None else ""))
    cols = [c for c in ("index", "n_words", "t_score", "f1", "tree", "gold") if c in table.columns]
    report.table(table[cols], max_rows=40)
    report.link(out / f"{prefix}.csv", f"{prefix}.csv (every sentence)")
    report.link(out / f"{prefix}.jsonl", f"{prefix}.jsonl (trees and charts, one sentence per line)")


def _prf_row(p: dict) -> dict:
    return {"f1": p["f1"], "precision": p["precision"], "recall": p["recall"], "matched": p["matched"],
            "predicted": p["predicted"], "gold": p["gold"]}


def tree_layers_section(report: Report, sweep, prefix: str = "trees", command: str | None = None) -> None:
    """Tree projections at several layers: the per-layer table and plot, and each layer's trees (JSONL)."""
    from lmscope._io import write_jsonl
    from lmscope.report.plots import plot_layer_scores

    out = report.out
    table = sweep.table()
    _csv(table, out / f"{prefix}_layers.csv")
    write_json(out / f"{prefix}_summary.json", sweep.to_dict(charts=False))
    for layer in sweep.layers:
        write_jsonl(out / f"{prefix}_layer{layer}.jsonl", sweep.results[layer].tree_rows(charts=True))
    first = sweep.results[sweep.layers[0]]
    report.heading(f"Tree projections across layers: {first.model}")
    if command:
        report.code(command)
    report.text(f"{len(first.sentences)} sentences, span mask from block {first.threshold}, {first.distance} "
                "distance; every layer is read from the same forward passes.")
    png = plot_layer_scores(table, out / f"{prefix}_layers.png", title=first.model)
    report.image(png, "t-score (mean over sentences) and parsing F1 per layer.")
    report.table(table, max_rows=200)
    report.link(out / f"{prefix}_layers.csv", f"{prefix}_layers.csv")


def prior_table_section(report: Report, table, prefix: str) -> None:
    """One prior table: JSON and CSV files, and a heatmap for tables of one or two axes."""
    from lmscope.report.plots import plot_prior_table

    out = report.out
    table.save(out / f"{prefix}.json")
    table.save(out / f"{prefix}.csv")
    v = table.values
    if v.ndim == 1:
        v, rows, cols, rname = v[None, :], [""], list(table.labels[0]), ""
    elif v.ndim == 2:
        rows, cols, rname = list(table.labels[0]), list(table.labels[1]), table.axes[0]
    else:
        report.link(out / f"{prefix}.csv", f"{prefix}.csv")
        return
    png = plot_prior_table(v, rows, cols, out / f"{prefix}.png", title=table.name, row_name=rname,
                           col_name=table.axes[-1])
    query = table.source.get("query", {})
    caption = f"{table.name}: " + (f"template {query.get('template')!r}" if query else "")
    report.image(png, caption)
    report.link(out / f"{prefix}.csv", f"{prefix}.csv")


def priors_section(report: Report, result, prefix: str | None = None, command: str | None = None) -> None:
    """An LM-priors benchmark: the table of methods, a bar chart per metric, the LM's prior tables."""
    from lmscope.report.plots import plot_method_bars

    out = report.out
    prefix = prefix or f"priors_{result.benchmark}"
    _csv(result.table, out / f"{prefix}.csv")
    _csv(result.wide(), out / f"{prefix}_wide.csv")
    write_json(out / f"{prefix}.json", result.to_dict())
    report.heading(f"LM priors: {result.benchmark}")
    if command:
        report.code(command)
    report.code("\n".join(result.summary_lines()))
    for metric in dict.fromkeys(result.table["metric"]):
        png = plot_method_bars(result.table, metric, out / f"{prefix}_{metric}.png",
                               title=f"{result.benchmark}: {metric.replace('_', ' ')}")
        report.image(png, f"{metric.replace('_', ' ')} per method and slice")
    report.link(out / f"{prefix}.csv", f"{prefix}.csv (method, slice, metric, value, n)")
    if result.tables:
        report.heading("Prior tables from the language model", level=3)
        for name, table in result.tables.items():
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            prior_table_section(report, table, f"{prefix}_table_{safe}")
