"""Matplotlib figures for spectra, intruder dimensions, LASER, tree projections, LM priors and
pseudointelligence profiles (written atomically as PNG; :func:`save_figure` for figures drawn elsewhere in
:mod:`lmscope.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lmscope._io import atomic_path  # noqa: E402
from lmscope.models.roles import ROLES  # noqa: E402

if TYPE_CHECKING:
    from lmscope.evaluation.profile import ProfileResult


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (temporary file, then rename) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _role_order(roles) -> list[str]:
    known = [r for r in ROLES if r in set(roles)]
    return known + sorted(set(roles) - set(known))


def _layer_role_grid(table: pd.DataFrame, value: str) -> pd.DataFrame:
    t = table[table["layer"].notna()]
    grid = t.pivot_table(index="layer", columns="role", values=value, aggfunc="sum")
    return grid[_role_order(grid.columns)]


def plot_singular_values(values: dict[str, np.ndarray], table: pd.DataFrame, path: str | Path,
                         title: str = "") -> Path:
    """One panel per role: normalized singular values s_i / s_1 against rank, one curve per layer."""
    roles = _role_order(table["role"].unique())
    n = len(roles)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, layout="constrained")
    layers = sorted(int(x) for x in table["layer"].dropna().unique())
    cmap = plt.get_cmap("viridis")
    for ax, role in zip(axes.flat, roles):
        sub = table[table["role"] == role]
        for row in sub.itertuples():
            s = values[row.key]
            if s[0] <= 0:
                continue
            c = cmap(layers.index(int(row.layer)) / max(1, len(layers) - 1)) if row.layer == row.layer else "k"
            ax.plot(np.arange(1, len(s) + 1), s / s[0], color=c, lw=0.9)
        ax.set_yscale("log")
        ax.set_title(role, fontsize=10)
        ax.set_xlabel("rank i", fontsize=8)
        ax.set_ylabel("s_i / s_1", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if layers:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(min(layers), max(layers)))
        fig.colorbar(sm, ax=axes, shrink=0.8, label="layer")
    fig.suptitle(title or "Singular values per role across layers", fontsize=11)
    return save_figure(fig, path)


def _heatmap(grid: pd.DataFrame, path, title: str, cbar: str, cmap="viridis", annotate=False, fmt="{:.0f}"):
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * grid.shape[1], 1.2 + 0.22 * grid.shape[0]))
    data = grid.to_numpy(dtype=float)
    im = ax.imshow(data, aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(grid.shape[1]), grid.columns, fontsize=8)
    step = max(1, grid.shape[0] // 30)
    ax.set_yticks(range(0, grid.shape[0], step), [int(x) for x in grid.index[::step]], fontsize=7)
    ax.set_ylabel("layer")
    ax.set_xlabel("role")
    ax.set_title(title, fontsize=10)
    if annotate and grid.size <= 400:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                        color="white" if v < np.nanmax(data) * 0.6 else "black")
    fig.colorbar(im, ax=ax, label=cbar)
    return save_figure(fig, path)


def plot_metric_heatmap(table: pd.DataFrame, metric: str, path: str | Path, title: str = "") -> Path:
    """Layer x role heatmap of one spectrum metric."""
    grid = _layer_role_grid(table, metric)
    return _heatmap(grid, path, title or f"{metric} per layer and role", metric, annotate=True, fmt="{:.1f}")


def plot_intruder_heatmap(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Layer x role heatmap of intruder counts."""
    grid = _layer_role_grid(table, "n_intruders")
    return _heatmap(grid, path, title or "Intruder dimensions per layer and role", "intruders", cmap="magma",
                    annotate=True)


def plot_intruders_by_eps(counts: pd.DataFrame, eps: float, n_vectors: int, path: str | Path,
                          title: str = "") -> Path:
    """Intruder count against the threshold eps (``counts``: IntruderResult.counts_by_eps), all matrices
    in bold and one thin line per role; the threshold used is marked. The y axis is linear up to 1 and
    logarithmic above, so zeros and a handful of intruders stay visible next to large counts."""
    fixed = {"eps", "n_intruders", "matrices_with_intruders"}
    roles = [c for c in counts.columns if c not in fixed]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    cmap = plt.get_cmap("tab10")
    for i, role in enumerate(_role_order(roles)):
        ax.plot(counts["eps"], counts[role], lw=0.9, marker=".", ms=3, color=cmap(i % 10), label=role)
    ax.plot(counts["eps"], counts["n_intruders"], lw=2.2, color="black", marker="o", ms=3, label="all matrices")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0, top=max(2.0, n_vectors * 1.5))
    ax.axhline(n_vectors, color="grey", lw=0.8, ls=":")
    ax.text(0.99, n_vectors, f"all {n_vectors} top-k vectors ", ha="right", va="bottom", fontsize=7, color="grey")
    at = counts.loc[(counts["eps"] - eps).abs().idxmin(), "n_intruders"] if len(counts) else 0
    ax.axvline(eps, color="crimson", lw=1, ls="--")
    ax.text(eps, 0.5, f" eps={eps:g}: {int(at)}", color="crimson", fontsize=8, va="center")
    ax.set_xlim(0, 1)
    ax.set_xlabel("eps (a tuned vector is an intruder when its best |cos| with the base is below eps)", fontsize=8)
    ax.set_ylabel("intruder dimensions")
    ax.legend(fontsize=7, ncol=2, loc="center left", frameon=False)
    ax.set_title(title or "Intruder dimensions against eps", fontsize=10)
    return save_figure(fig, path)


def plot_max_cos_histogram(values: np.ndarray, eps: float, path: str | Path, title: str = "") -> Path:
    """Histogram of every tuned top-k vector's best |cos| with the base, eps marked (the vectors left of
    the line are the intruders); on the right the same values as 1 - |cos| on a log axis, which
    separates matches that all look like 1 on the left (a short fine-tune)."""
    values = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    ax.hist(values, bins=np.linspace(0.0, 1.0, 51), color="steelblue", edgecolor="white", lw=0.4)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.7)
    ax.set_xlim(0, 1)
    ax.axvline(eps, color="crimson", lw=1, ls="--", label=f"eps = {eps:g}")
    n_below = int((values < eps).sum())
    low = float(values.min()) if len(values) else float("nan")
    ax.set_xlabel("largest |cos| with a base singular vector (1: kept)", fontsize=9)
    ax.set_ylabel("top-k vectors (log)")
    ax.legend(fontsize=8, loc="upper left", frameon=False,
              title=f"{len(values)} vectors, {n_below} below eps\nlowest {low:.3f}", title_fontsize=8)
    gap = np.maximum(1.0 - values, 1e-7)
    lo = min(1e-6, float(gap.min()) if len(gap) else 1e-6)
    ax2.hist(gap, bins=np.logspace(np.log10(lo), 0, 41), color="slategray", edgecolor="white", lw=0.4)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_ylim(bottom=0.7)
    ax2.axvline(1.0 - eps, color="crimson", lw=1, ls="--")
    ax2.set_xlabel("1 - largest |cos| (log; right of the dashed line: intruders)", fontsize=9)
    fig.suptitle(title or "How closely the tuned top-k directions match the base", fontsize=10)
    return save_figure(fig, path)


def plot_similarity(sim: np.ndarray, key: str, eps: float, path: str | Path, max_base: int | None = None,
                    title: str = "") -> Path:
    """|cos| between the tuned matrix's top-k left singular vectors and the base's (the paper's figure).

    Rows are the tuned vectors by rank; columns the base vectors by rank (first ``max_base``).
    Rows whose best match stays below eps (intruders) are marked on the right.
    """
    k, r0 = sim.shape
    max_base = max_base or max(50, 5 * k)
    shown = sim[:, : min(r0, max_base)]
    best = sim.max(axis=1)
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.28 * k))
    im = ax.imshow(shown, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel(f"base singular vector (rank, first {shown.shape[1]} of {r0})")
    ax.set_ylabel("tuned singular vector (rank)")
    ax.set_yticks(range(k), [str(i) for i in range(k)], fontsize=7)
    for i in range(k):
        mark = "intruder" if best[i] < eps else ""
        ax.text(shown.shape[1] + 1, i, f"max {best[i]:.2f} {mark}", va="center", fontsize=7,
                color="crimson" if mark else "black")
    ax.set_title(title or f"{key}: |cos(u_tuned, u_base)|", fontsize=10)
    fig.colorbar(im, ax=ax, label="|cosine|", pad=0.15)
    return save_figure(fig, path)


def plot_loss_curve(curves: dict[str, list[float]], path: str | Path, title: str = "Training loss") -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, losses in curves.items():
        y = np.asarray(losses, dtype=float)
        w = max(1, len(y) // 50)
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(len(smooth)) + w, smooth, label=name, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_laser_heatmaps(table: pd.DataFrame, path: str | Path, metric: str = "d_accuracy", title: str = "") -> Path:
    """One panel per role: layer (rows) x kept fraction (columns), colored by ``metric`` (a change vs base).

    Accuracy changes are shown in percentage points on a diverging scale centred at zero (red: worse).
    """
    roles = _role_order(table["role"].unique())
    keeps = sorted(table["keep"].unique(), reverse=True)
    layers = sorted(table["layer"].unique())
    scale = 100.0 if metric == "d_accuracy" else 1.0
    values = table[metric].to_numpy(dtype=float) * scale
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    lim = lim or 1.0
    cmap = "RdBu" if metric == "d_accuracy" else "RdBu_r"  # blue is better in both
    width = max(6.0, 1.8 + (0.5 * len(keeps) + 0.6) * len(roles))
    fig, axes = plt.subplots(1, len(roles), figsize=(width, 1.8 + 0.24 * len(layers)), squeeze=False)
    im = None
    for ax, role in zip(axes[0], roles, strict=True):
        t = table[table["role"] == role]
        grid = t.pivot_table(index="layer", columns="keep", values=metric, aggfunc="first")
        grid = grid.reindex(index=layers, columns=keeps) * scale
        data = grid.to_numpy(dtype=float)
        im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks(range(len(keeps)), [f"{k:g}" for k in keeps], fontsize=7, rotation=60)
        step = max(1, len(layers) // 30)
        ax.set_yticks(range(0, len(layers), step), [int(x) for x in layers[::step]], fontsize=7)
        ax.set_xlabel("kept fraction")
        if ax is axes[0][0]:
            ax.set_ylabel("layer")
        ax.set_title(role, fontsize=9)
        if data.size <= 300:
            for (i, j), v in np.ndenumerate(data):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.0f}" if scale == 100 else f"{v:+.2f}", ha="center", va="center",
                            fontsize=5.5, color="white" if abs(v) > 0.6 * lim else "black")
    label = "Δ accuracy (points)" if metric == "d_accuracy" else f"Δ {metric.removeprefix('d_')}"
    fig.colorbar(im, ax=list(axes[0]), label=label, shrink=0.9)
    fig.suptitle(title or f"LASER: {label} vs the unmodified model (validation)", fontsize=10,
                 y=1.0 + 0.25 / fig.get_figheight())
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------
# Tree projections
# ------------------------------------------------------------------------------------------------
def plot_sci_chart(chart: np.ndarray, words: list[str], path: str | Path, title: str = "") -> Path:
    """The n x n upper triangle of a span-similarity chart: row = first word, column = last word."""
    chart = np.asarray(chart, dtype=float)
    n = chart.shape[0]
    size = min(12.0, 2.2 + 0.42 * n)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    shown = np.ma.masked_invalid(np.where(np.triu(np.ones((n, n), dtype=bool)), chart, np.nan))
    im = ax.imshow(shown, cmap="viridis", interpolation="nearest")
    fs = 8 if n <= 20 else 6
    ax.set_xticks(range(n), words, rotation=60, ha="right", fontsize=fs)
    ax.set_yticks(range(n), words, fontsize=fs)
    ax.set_xlabel("last word of the span (j)")
    ax.set_ylabel("first word of the span (i)")
    if n <= 14:
        finite = shown.compressed()
        mid = float(np.median(finite)) if finite.size else 0.0
        for (i, j), v in np.ndenumerate(chart):
            if j >= i and np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < mid else "black")
    ax.set_title(title or "span similarity s(i, j) = 1 - SCI", fontsize=10)
    fig.colorbar(im, ax=ax, label="s(i, j)", shrink=0.8)
    return save_figure(fig, path)


def _tree_layout(tree) -> tuple[list[str], list[tuple[float, float, list[tuple[float, float]], tuple[int, int]]]]:
    """Leaves and, per internal node, (x, height, children's (x, height), word span), bottom-up."""
    words: list[str] = []
    nodes = []

    def walk(t) -> tuple[float, float, tuple[int, int]]:
        if isinstance(t, str):
            words.append(t)
            k = len(words) - 1
            return float(k), 0.0, (k, k)
        kids = [walk(c) for c in t]
        h = 1.0 + max(k[1] for k in kids)
        x = (kids[0][0] + kids[-1][0]) / 2
        span = (kids[0][2][0], kids[-1][2][1])
        nodes.append((x, h, [(k[0], k[1]) for k in kids], span))
        return x, h, span

    walk(tree)
    return words, nodes


def plot_tree(tree, path: str | Path, title: str = "", gold=None) -> Path:
    """A dendrogram-like drawing of a tree over words (leaves at the bottom, in order).

    With ``gold`` (a tree over the same words), internal nodes whose span is a gold bracket are drawn
    in green and the others in red.
    """
    from lmscope.data.trees import spans as tree_spans

    words, nodes = _tree_layout(tree)
    gold_spans = tree_spans(gold) if gold is not None else None
    n = len(words)
    height = max([h for _, h, _, _ in nodes], default=0.0)
    fig, ax = plt.subplots(figsize=(min(16.0, 1.5 + 0.55 * n), min(8.0, 1.6 + 0.32 * height)))
    for _x, h, kids, span in nodes:
        color = "0.2" if gold_spans is None else ("tab:green" if span in gold_spans else "tab:red")
        xs = [k[0] for k in kids]
        ax.plot([min(xs), max(xs)], [h, h], color=color, lw=1.4)
        for kx, kh in kids:
            ax.plot([kx, kx], [kh, h], color=color, lw=1.4)
    ax.set_xticks(range(n), words, rotation=60 if n > 8 else 0, ha="right" if n > 8 else "center", fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.05, height + 0.4)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if gold_spans is not None:
        ax.plot([], [], color="tab:green", label="also in the gold tree")
        ax.plot([], [], color="tab:red", label="not in the gold tree")
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    ax.set_title(title or "induced tree", fontsize=10)
    return save_figure(fig, path)


def plot_layer_scores(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """t-score and (when present) parsing F1 with its baselines, against the layer."""
    has_f1 = "f1" in table.columns
    fig, axes = plt.subplots(1, 2 if has_f1 else 1, figsize=(10 if has_f1 else 5, 3.3), squeeze=False)
    ax = axes[0][0]
    ax.plot(table["layer"], table["t_score"], marker="o", lw=1.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("t-score")
    ax.set_title("tree-structuredness (t-score)", fontsize=10)
    if has_f1:
        ax = axes[0][1]
        ax.plot(table["layer"], table["f1"], marker="o", lw=1.4, label="induced trees")
        for col, style in (("f1_left", ":"), ("f1_right", "--"), ("f1_balanced", "-."), ("f1_random", ":")):
            if col in table.columns:
                ax.plot(table["layer"], table[col], ls=style, lw=1.0, label=col.removeprefix("f1_"))
        ax.set_xlabel("layer")
        ax.set_ylabel("parsing F1")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        ax.set_title("parsing F1 against the gold trees", fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------
# LM priors
# ------------------------------------------------------------------------------------------------
def plot_method_bars(table: pd.DataFrame, metric: str, path: str | Path, title: str = "") -> Path:
    """Grouped bars of ``metric``: one group per slice, one bar per method (long table: method, slice, value)."""
    t = table[table["metric"] == metric]
    methods = list(dict.fromkeys(t["method"]))
    slices = list(dict.fromkeys(t["slice"]))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 1.3 * len(slices) * max(1, len(methods)) / 4), 3.2))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        vals = [t[(t["method"] == m) & (t["slice"] == s)]["value"].mean() for s in slices]
        ax.bar(np.arange(len(slices)) + (i - (len(methods) - 1) / 2) * width, vals, width, label=m)
    ax.set_xticks(range(len(slices)), slices, fontsize=9)
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_prior_table(values: np.ndarray, rows: list[str], cols: list[str], path: str | Path, title: str = "",
                     row_name: str = "", col_name: str = "") -> Path:
    """A probability table as a heatmap (rows x columns), annotated when small."""
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(min(14.0, 2.0 + 0.45 * len(cols)), min(12.0, 1.2 + 0.3 * len(rows))))
    im = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(col_name)
    ax.set_ylabel(row_name)
    if values.size <= 200:
        hi = float(values.max()) if values.size else 0.0
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5, color="black" if v > 0.6 * hi else "white")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="p")
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------------
# Pseudointelligence
# ------------------------------------------------------------------------------------------------
def plot_profile(table: pd.DataFrame, path: str | Path, resource: str, title: str = "") -> Path:
    """Advantage |P(model | g) - P(model | truth)| (with its 95% bootstrap interval as a band) against an
    evaluator resource, one line per (model, evaluator); points whose signed advantage is negative
    (inverted guesses) are drawn as open markers. A log-2 x axis when the values span more than a
    factor of 4."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    inverted = False
    for (model, evaluator), g in table.groupby(["model", "evaluator"], sort=False):
        g = g.sort_values("value")
        x = g["value"].astype(float).to_numpy()
        y = g["advantage"].astype(float).to_numpy()
        (line,) = ax.plot(x, y, marker="o", lw=1.4, label=f"{model} / {evaluator}")
        ax.fill_between(x, g["ci_low"].astype(float), g["ci_high"].astype(float), color=line.get_color(),
                        alpha=0.15, lw=0)
        if "signed_advantage" in g:
            neg = g["signed_advantage"].astype(float).to_numpy() < 0
            if neg.any():
                inverted = True
                ax.plot(x[neg], y[neg], ls="none", marker="o", mfc="white", mec=line.get_color(), zorder=3)
    values = table["value"].astype(float)
    if len(values) and values.min() > 0 and values.max() / values.min() > 4:
        ax.set_xscale("log", base=2)
        ticks = sorted(set(values))
        ax.set_xticks(ticks, [f"{int(v)}" for v in ticks])
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel(resource.replace("_", " "))
    ax.set_ylabel("advantage |P(model|g) - P(model|truth)|", fontsize=8)
    if inverted:
        ax.plot([], [], ls="none", marker="o", mfc="white", mec="0.3", label="open: inverted guesses (signed < 0)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_profile_result(result: ProfileResult, path: str | Path, title: str | None = None) -> Path:
    """:func:`plot_profile` of a :class:`~lmscope.evaluation.profile.ProfileResult`, titled by its capability."""
    return plot_profile(result.table, path, result.resource,
                        title or f"Pseudointelligence profile: {result.capability}")
