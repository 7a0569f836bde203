"""Plots of grokking runs: accuracy and t-score against steps, and final values against depth."""

from __future__ import annotations

import html
import os
from pathlib import Path

from lmscope._io import write_text
from lmscope.errors import LmscopeError
from lmscope.grokking.runs import load_run
from lmscope.report.plots import plt, save_figure


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(int(r["step"]))
            ys.append(float(v))
    return xs, ys


def plot_runs(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike, force: bool = False,
              command: str | None = None) -> dict:
    """Write ``accuracy.png`` (id and gen accuracy vs steps, log x), ``t_score.png`` (t-score vs
    steps), and when the runs differ in depth ``depth.png`` (final gen accuracy and t-score vs
    layers), plus ``index.html``, as one folder written atomically under lmscope's output policy (it
    may not be, hold or be inside a run folder; ``force`` replaces a folder lmscope did not write).
    Returns ``{"out", "files", "runs"}``."""
    from lmscope.outputs import output_dir

    if not run_dirs:
        raise LmscopeError("give at least one run folder")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir)
    with output_dir(out, run_dirs, command=command or "lmscope grok plot", force=force) as tmp:
        files, finals = _draw_runs(runs, tmp)
    return {"out": str(out), "files": [str(out / p.name) for p in files], "runs": finals}


def _draw_runs(runs: list[dict], out: Path) -> tuple[list[Path], list[dict]]:
    files = []

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        for key, style in (("id_acc", "--"), ("gen_acc", "-")):
            xs, ys = _series(run["rows"], key)
            if xs:
                ax.plot(xs, ys, style, color=color, label=f"{run['name']} ({key.split('_')[0]})")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("in-distribution (dashed) and generalization (solid) accuracy")
    files.append(save_figure(fig, out / "accuracy.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, run in enumerate(runs):
        xs, ys = _series(run["rows"], "t_score")
        if xs:
            ax.plot(xs, ys, color=f"C{i % 10}", label=run["name"])
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("t-score")
    ax.legend(fontsize=7)
    ax.set_title("tree-structuredness (t-score)")
    files.append(save_figure(fig, out / "t_score.png"))

    finals = []
    for run in runs:
        last = run["rows"][-1]
        finals.append({"name": run["name"], "task": run["task"], "layers": run["layers"], "step": last["step"],
                       "id_acc": last.get("id_acc"), "gen_acc": last.get("gen_acc"),
                       "t_score": last.get("t_score"), "f1": last.get("f1")})
    depths = sorted({f["layers"] for f in finals})
    if len(depths) > 1:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, key, label in ((axes[0], "gen_acc", "final generalization accuracy"),
                               (axes[1], "t_score", "final t-score")):
            by_depth = {d: [f[key] for f in finals if f["layers"] == d and isinstance(f[key], (int, float))]
                        for d in depths}
            xs = [d for d in depths if by_depth[d]]
            for d in xs:  # every run as a dot, the mean over seeds as the line
                ax.plot([d] * len(by_depth[d]), by_depth[d], "o", color="C0", alpha=0.4, ms=4)
            if xs:
                ax.plot(xs, [sum(by_depth[d]) / len(by_depth[d]) for d in xs], "-", color="C0", lw=2)
            ax.set_xlabel("layers")
            ax.set_ylabel(label)
            ax.set_xticks(depths)
        files.append(save_figure(fig, out / "depth.png"))

    def cell(v):
        return "" if v is None else (f"{v:.4f}" if isinstance(v, float) else html.escape(str(v)))

    head = "".join(f"<th>{k}</th>" for k in finals[0])
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in f.values()) + "</tr>" for f in finals)
    imgs = "".join(f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in files)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>lmscope grokking runs</title></head>"
            f"<body><h1>Grokking runs</h1><table border='1'><tr>{head}</tr>{body}</table>{imgs}</body></html>\n")
    files.append(write_text(out / "index.html", page))
    return files, finals
