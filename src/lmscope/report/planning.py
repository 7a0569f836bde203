"""The report of an Ada run: solved rate per iteration per split (a plot and a table), the learned
library as a PDDL domain, the candidates with their records, and the rejected candidates by reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from lmscope._io import write_text
from lmscope.report.html import Report
from lmscope.report.plots import plt, save_figure

SPLITS = ("train", "heldout", "test")


def solved_rates(history: list[dict]) -> pd.DataFrame:
    """One row per iteration: the solved fraction of each split, the library size and the costs."""
    rows = []
    for h in history:
        row = {"iteration": h["iteration"]}
        for s in SPLITS:
            if f"{s}_tasks" in h:
                row[s] = h[f"{s}_solved"] / h[f"{s}_tasks"] if h[f"{s}_tasks"] else float("nan")
        row.update({k: h[k] for k in ("library", "candidates", "rejected", "lm_calls", "planner_seconds")})
        rows.append(row)
    return pd.DataFrame(rows)


def library_pddl(summary: dict) -> str:
    """The skeleton domain plus the learned library, as one PDDL domain (comment lines give each
    operator's record)."""
    from lmscope.planning.worlds import get_world

    skel = get_world(summary["world"]).skeleton_domain()
    text = skel.to_pddl().rstrip()[:-1]  # without the domain's closing parenthesis
    for o in summary["library"]:
        record = (f"{o['successes']} of {o['attempts']} runs reached its effects" if summary["config"]["learn"]
                  else "kept without scoring (no learning)")
        text += (f"\n  ; {o['name']}: {record} (proposed in iteration {o['iteration'] + 1})\n  "
                 + o["pddl"].replace("\n", "\n  "))
    return text + ")\n"


def write_ada_report(summary: dict, folder: str | Path, command: str | None = None) -> list[Path]:
    """``history.csv``, ``solved.png``, ``library.pddl``, ``candidates.csv``, ``rejected.csv`` and
    ``index.html`` in ``folder`` (each file written atomically)."""
    folder = Path(folder)
    files = []
    rates = solved_rates(summary["history"])
    write_text(folder / "history.csv", rates.to_csv(index=False))
    files.append(folder / "history.csv")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for s in SPLITS:
        if s in rates:
            ax.plot(rates["iteration"], rates[s], marker="o", label=s)
    ax.set_xlabel("iteration")
    ax.set_ylabel("solved fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(list(rates["iteration"]))
    ax.legend()
    ax.set_title(f"Ada on {summary['world']} ({summary['lm']})")
    files.append(save_figure(fig, folder / "solved.png"))
    write_text(folder / "library.pddl", library_pddl(summary))
    files.append(folder / "library.pddl")
    cands = pd.DataFrame([{k: o[k] for k in ("name", "proposed", "iteration", "successes", "attempts")}
                          | {"in_library": any(o["name"] == x["name"] for x in summary["library"])}
                          for o in summary["candidates"]])
    write_text(folder / "candidates.csv", cands.to_csv(index=False))
    rej = pd.DataFrame([{k: r[k] for k in ("iteration", "name", "code", "reason")} for r in summary["rejected"]])
    write_text(folder / "rejected.csv", rej.to_csv(index=False))
    files += [folder / "candidates.csv", folder / "rejected.csv"]

    rep = Report(folder, f"Ada: {summary['world']}")
    if command:
        rep.code(command)
    rep.kv({"world": summary["world"], "language model": summary["lm"], "iterations": len(summary["history"]),
            "library size": len(summary["library"]), "candidates": len(summary["candidates"]),
            "rejected candidates": len(summary["rejected"]), "LM calls": summary["counters"]["lm_calls"],
            "planner seconds": round(summary["counters"]["planner_seconds"], 2)})
    rep.heading("Solved rate per iteration")
    rep.text("train: training tasks solved so far; heldout: tasks that need recipes or templates no training "
             "task uses; test: new instances of the training recipes. Held-out and test tasks are solved with "
             "the library as it stands after the iteration, and never learned from.", note=True)
    rep.image(folder / "solved.png")
    rep.table(rates)
    rep.heading("Learned library")
    rep.link(folder / "library.pddl", "library.pddl (the given actions plus the learned operators)")
    rep.table(cands if len(cands) else pd.DataFrame({"candidates": ["none"]}))
    rep.heading("Rejected candidates by reason")
    counts = Counter(r["code"] for r in summary["rejected"])
    rep.table(pd.DataFrame(sorted(counts.items(), key=lambda kv: -kv[1]), columns=["reason", "count"])
              if counts else pd.DataFrame({"reason": ["none"]}))
    files.append(rep.write())
    return files
