"""The pages of LAST: a trained run's skill library (skills, the LM's descriptions, the bot subgoals they
cover, segmentations drawn over demonstrations) and a transfer comparison (success rate against the number
of demonstrations, with Wilson intervals)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from lmscope.report.html import Report
from lmscope.report.plots import plt, save_figure

EXAMPLES = 6  # demos drawn on the library page
ACTION_SHORT = ("L", "R", "F", "P", "D", "T", "done")


def skills_per_demo(library: dict, lengths: list[int]) -> list[np.ndarray]:
    """Per-step skill ids of each demo from the library's segments (-1 where none covers a step)."""
    out = [np.full(n, -1, dtype=int) for n in lengths]
    for s in library.get("skills", []):
        for seg in s.get("segments", []):
            d, a, b = int(seg["demo"]), int(seg["start"]), int(seg["end"])
            if 0 <= d < len(out):
                out[d][a:b] = int(s["skill"])
    return out


def _spans(labels) -> list[tuple[int, int, object]]:
    spans, start = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            spans.append((start, t, labels[start]))
            start = t
    return spans


def plot_segmentation(demo, seg, skills: np.ndarray, path: str | Path, k: int) -> Path:
    """Three rows over the demo's steps: the LM's segments (with their descriptions), the inferred skills
    (one colour per skill) and the bot's own subgoals; the actions are written along the bottom."""
    n = len(demo)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * n + 2), 2.6))
    cmap = plt.get_cmap("tab20")
    ends = list(seg.starts[1:]) + [n]
    for i, (a, b) in enumerate(zip(seg.starts, ends)):
        ax.barh(2, b - a, left=a, height=0.8, color="#dde" if i % 2 else "#bbd", edgecolor="k", lw=0.5)
        desc = seg.descriptions[i] if i < len(seg.descriptions) else ""
        ax.text((a + b) / 2, 2, desc[:28], ha="center", va="center", fontsize=6)
    for a, b, z in _spans(list(skills)):
        color = "#eee" if z < 0 else cmap(int(z) % 20)
        ax.barh(1, b - a, left=a, height=0.8, color=color, edgecolor="k", lw=0.5)
        ax.text((a + b) / 2, 1, "?" if z < 0 else f"z{z}", ha="center", va="center", fontsize=7)
    kinds = sorted(set(demo.subgoals))
    for a, b, g in _spans(list(demo.subgoals)):
        ax.barh(0, b - a, left=a, height=0.8, color=plt.get_cmap("Pastel1")(kinds.index(g) % 9),
                edgecolor="k", lw=0.5)
        ax.text((a + b) / 2, 0, str(g)[:22], ha="center", va="center", fontsize=6)
    for t, act in enumerate(demo.actions):
        ax.text(t + 0.5, -0.75, ACTION_SHORT[int(act)] if 0 <= int(act) < len(ACTION_SHORT) else "?",
                ha="center", va="center", fontsize=7)
    ax.set_yticks([0, 1, 2], ["bot subgoal", "skill", f"segments ({seg.source})"])
    ax.set_ylim(-1.1, 2.5)
    ax.set_xlim(0, n)
    ax.set_xlabel("step (actions: L left, R right, F forward, P pick up, D drop, T toggle)")
    ax.set_title(demo.mission[:100], fontsize=9)
    return save_figure(fig, path)


def library_table(library: dict) -> pd.DataFrame:
    rows = []
    for s in library.get("skills", []):
        descs = Counter(d for d in s.get("descriptions", []) if d)
        subgoals = Counter({k: v for k, v in (s.get("subgoals") or {}).items()})
        rows.append({"skill": f"z{s['skill']}", "uses": s.get("uses", len(s.get("segments", []))),
                     "mean length": float(np.mean([g["end"] - g["start"] for g in s["segments"]]))
                     if s.get("segments") else float("nan"),
                     "LM descriptions (most common)": "; ".join(f"{d} ({c})" for d, c in descs.most_common(3)),
                     "bot subgoals (steps)": ", ".join(f"{g} {c}" for g, c in subgoals.most_common(3))})
    return pd.DataFrame(rows)


def write_library_report(run_dir: str | Path, library: dict, demos, segs, command: str | None = None) -> Path:
    """``index.html`` and ``segmentation-*.png`` in the run folder (each written atomically)."""
    folder = Path(run_dir)
    rep = Report(folder, "LAST skill library")
    if command:
        rep.code(command)
    used = [s for s in library.get("skills", []) if s.get("segments")]
    facts = {"demos": len(demos), "skills (K)": library.get("k", len(library.get("skills", []))),
             "skills used": len(used)}
    b = library.get("boundary_f1")
    if isinstance(b, dict):
        facts["skill starts vs bot subgoal changes: F1"] = round(b["f1"], 4)
        facts["precision"] = round(b["precision"], 4)
        facts["recall"] = round(b["recall"], 4)
    rep.kv(facts)
    rep.heading("Skills")
    table = library_table(library)
    rep.table(table if len(table) else pd.DataFrame({"skills": ["none used"]}))
    rep.link(folder / "library.json", "library.json (every segment of every skill)")
    rep.heading("Segmentations")
    rep.text("Top: the segments the inference was given (an LM's, or an ablation's). Middle: the skills the "
             "posterior assigns (a new skill may start only where a segment starts). Bottom: the expert bot's "
             "own subgoals, recorded while the demonstration was made.", note=True)
    skills = skills_per_demo(library, [len(d) for d in demos])
    k = int(library.get("k", 1) or 1)
    for i in range(min(EXAMPLES, len(demos))):
        png = plot_segmentation(demos[i], segs[i], skills[i], folder / f"segmentation-{i}.png", k)
        rep.image(png, f"demo {i}: {demos[i].mission}")
    return rep.write()


def plot_transfer(res, path: str | Path) -> Path:
    """Success rate against the number of demonstrations, one line per policy, Wilson 95% intervals."""
    from lmscope._stats import wilson

    df = res.frame()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for policy, g in df.groupby("policy", sort=False):
        g = g.sort_values("n_demos")
        lo, hi = zip(*(wilson(int(s), int(e)) for s, e in zip(g["successes"], g["episodes"])))
        ax.plot(g["n_demos"], g["success_rate"], marker="o", label=policy)
        ax.fill_between(g["n_demos"], lo, hi, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(sorted(df["n_demos"].unique()), [str(c) for c in sorted(df["n_demos"].unique())])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("demonstrations of the new level")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{res.level}: {res.config.episodes} fresh episodes per point")
    ax.legend()
    return save_figure(fig, path)


def fill_transfer_report(rep: Report, res) -> None:
    """A transfer page: the curve, the table (also as CSV and JSON)."""
    from lmscope._io import write_json, write_text

    write_json(rep.out / "results.json", res.to_dict())
    write_text(rep.out / "curves.csv", res.frame().to_csv(index=False))
    rep.kv({"level": res.level, "episodes per point": res.config.episodes,
            "behaviour-cloning steps": res.config.steps, "seed": res.config.seed})
    rep.image(plot_transfer(res, rep.out / "curves.png"),
              "flat: a policy over actions; the others: a high-level policy over a run's skills")
    rep.table(res.frame())
    rep.link(rep.out / "curves.csv", "curves.csv")
    rep.link(rep.out / "results.json", "results.json (also the demo and episode seeds)")
