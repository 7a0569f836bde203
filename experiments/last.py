"""LAST on BabyAI: the reproduction of Fu et al. (2024) at our scale.

Every step is an lmscope command, run through the shared sweep runner (`lmscope.train.sweep`: local
processes, or a Ray cluster with --ray); runs that finished are skipped, so the script resumes.

1. ``demos``: `lmscope skills demos` of the four short discovery levels (GoToLocal, PickupLoc, OpenDoor,
   PutNextLocal; SIZES["per_level"] each) in one folder.
2. ``seg-*``: `lmscope skills segment` of those demos by each language model (temperature 0, so one
   segmentation serves every seed) and by the ablations: fixed segments of 3, random lengths 2-5, and none
   (every step may start a skill: the compression-only learner).
3. ``train-*``: `lmscope skills train` on each segmentation, for every seed; plus a small sensitivity sweep
   (K, beta, Gumbel temperature) on the first LM's segments, seed 0.
4. ``transfer-*``: `lmscope skills transfer` to UnlockPickup per seed: a high-level policy over the skills
   learned from the LM's segments, over those of the no-LM and fixed ablations, and a flat policy, each
   by behaviour cloning from the first N demonstrations of the new level, scored in fresh episodes.

The page, docs/results/last.md, gets the segmentation quality against the bot's own subgoals, the skills'
alignment with those subgoals, the transfer curves over seeds with intervals, the sensitivity table and the
setup against the paper's.

    .venv/bin/python experiments/last.py                 # the page (runs resume where they stopped)
    .venv/bin/python experiments/last.py --report-only   # the page from the runs so far
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _doc import PLACEHOLDER, md_table, mean_range, write_keeping_reading

from lmscope.cli._lists import int_list
from lmscope.train.sweep import SweepJob, run_sweep

DISCOVERY = ("GoToLocal", "PickupLoc", "OpenDoor", "PutNextLocal")
TRANSFER = "UnlockPickup"
LMS = {"smollm2-135m": "smollm2", "qwen2.5-coder-0.5b": "coder"}
ABLATIONS = ("fixed", "random", "none")
SIZES = dict(per_level=20, counts="5,10,25,50", episodes=50, steps=None)
SENSITIVITY = (("skills", "4"), ("skills", "16"), ("beta", "0.01"), ("beta", "1.0"), ("tau", "0.5"),
               ("tau", "2.0"), ("mdl", "1.0"))


def _done(path: Path, name: str) -> bool:
    return (path / name).is_file()


def sweep(jobs: list[SweepJob], root: Path, args) -> None:
    todo = [j for j in jobs if j.status != "skipped"]
    if not todo:
        return
    res = run_sweep(jobs, root, workers=args.jobs, threads=args.threads, ray=args.ray)
    if res["failed"]:
        print(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])}", file=sys.stderr)


def seg_label(method: str, lm: str | None) -> str:
    return f"lm-{LMS.get(lm, lm)}" if method == "lm" else method


def stage_jobs(args, runs: Path) -> list[list[SweepJob]]:
    """The four stages' jobs (each stage needs the previous one's outputs)."""
    demos = runs / "demos"
    stages: list[list[SweepJob]] = []
    j = SweepJob("demos", demos, ["skills", "demos", "--level", ",".join(DISCOVERY), "--n", str(args.per_level),
                                  "--seed", "0", "--jobs", "1", "--out", str(demos), "--quiet"])
    if _done(demos, "manifest.json"):
        j.status = "skipped"
    stages.append([j])
    segs = []
    for lm in args.lms:
        name = f"seg-{seg_label('lm', lm)}"
        segs.append(SweepJob(name, runs / name, ["skills", "segment", str(demos), "--method", "lm", "--lm",
                                                 f"local:{lm}", "--lm-cache", str(runs / "lm.sqlite"),
                                                 "--out", str(runs / name), "--quiet"]))
    for m in ABLATIONS:
        segs.append(SweepJob(f"seg-{m}", runs / f"seg-{m}", ["skills", "segment", str(demos), "--method", m,
                                                             "--out", str(runs / f"seg-{m}"), "--quiet"]))
    for s in segs:
        if _done(s.run_dir, "segments.jsonl"):
            s.status = "skipped"
    stages.append(segs)
    train = []
    labels = [seg_label("lm", lm) for lm in args.lms] + list(ABLATIONS)
    steps = ["--steps", str(args.steps)] if args.steps else []
    for seed in args.seeds:
        for label in labels:
            name = f"train-{label}-s{seed}"
            train.append(SweepJob(name, runs / name, ["skills", "train", str(runs / f"seg-{label}"), "--seed",
                                                      str(seed), *steps, "--out", str(runs / name), "--quiet"]))
    if args.lms:
        main = seg_label("lm", args.lms[0])
        for opt, value in SENSITIVITY:
            name = f"sens-{main}-{opt}{value}"
            train.append(SweepJob(name, runs / name, ["skills", "train", str(runs / f"seg-{main}"), "--seed", "0",
                                                      *steps, f"--{opt}", value, "--out", str(runs / name),
                                                      "--quiet"]))
    for t in train:
        if _done(t.run_dir, "library.json"):
            t.status = "skipped"
    stages.append(train)
    transfer = []
    if args.lms:
        main = seg_label("lm", args.lms[0])
        for seed in args.seeds:
            name = f"transfer-s{seed}"
            argv = ["skills", "transfer", str(runs / f"train-{main}-s{seed}"), "--level", TRANSFER, "--demos",
                    args.counts, "--episodes", str(args.episodes), "--seed", str(seed), "--jobs", "1"]
            for other in [seg_label("lm", lm) for lm in args.lms[1:]] + ["none", "fixed"]:
                argv += ["--compare", f"{other}={runs / f'train-{other}-s{seed}'}"]
            transfer.append(SweepJob(name, runs / name, [*argv, "--out", str(runs / name), "--quiet"]))
    for t in transfer:
        if _done(t.run_dir, "results.json"):
            t.status = "skipped"
    stages.append(transfer)
    return stages


# ------------------------------------------------------------------------------------------ the page
def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def mean_ci(values) -> tuple[float, float]:
    """Mean and the half-width of a 95% t interval over seeds."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else float("nan"), float("nan"))
    from scipy import stats

    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def segmentation_rows(runs: Path, labels: list[str]) -> list[list[str]]:
    rows = []
    for label in labels:
        q = _json(runs / f"seg-{label}" / "quality.json")
        if q is None:
            continue
        src = ", ".join(f"{k} {v}" for k, v in sorted((q.get("by_source") or {}).items()))
        top = sorted((q.get("by_reason") or {}).items(), key=lambda kv: -kv[1])[:3]
        rows.append([label, f"{q['precision']:.3f}", f"{q['recall']:.3f}", f"{q['f1']:.3f}",
                     f"{q['mean_segment_length']:.2f}", src, ", ".join(f"{k} {v}" for k, v in top) or "–"])
    return rows


def skill_rows(runs: Path, labels: list[str], seeds: list[int]) -> list[list[str]]:
    rows = []
    for label in labels:
        libs = [_json(runs / f"train-{label}-s{s}" / "library.json") for s in seeds]
        libs = [lib for lib in libs if lib]
        if not libs:
            continue
        f1 = [lib["boundary_f1"]["f1"] for lib in libs]
        used = [sum(1 for s in lib["skills"] if s.get("segments")) for lib in libs]
        per_demo = [lib["segments"] / lib["demos"] for lib in libs]
        acc = []
        for s in seeds:
            metrics = runs / f"train-{label}-s{s}" / "metrics.jsonl"
            if metrics.is_file():
                acc.append(json.loads(metrics.read_text().splitlines()[-1]).get("heldout_action_acc"))
        rows.append([label, len(libs), mean_range(f1), mean_range(used), mean_range(per_demo), mean_range(acc)])
    return rows


def transfer_table(runs: Path, seeds: list[int]) -> tuple[list[list[str]], dict]:
    """Mean success over seeds with a 95% t interval, per policy and number of demos."""
    by: dict[tuple[str, int], list[float]] = {}
    for s in seeds:
        res = _json(runs / f"transfer-s{s}" / "results.json")
        if res is None:
            continue
        for r in res["rows"]:
            by.setdefault((r["policy"], r["n_demos"]), []).append(r["success_rate"])
    policies = list(dict.fromkeys(p for p, _ in by))
    counts = sorted({n for _, n in by})
    rows = []
    for p in policies:
        cells = []
        for n in counts:
            vals = by.get((p, n), [])
            m, h = mean_ci(vals)
            cells.append("–" if not vals else (f"{m:.2f}" + ("" if h != h else f" ± {h:.2f}")) + f" ({len(vals)})")
        rows.append([p, *cells])
    return rows, {"policies": policies, "counts": counts, "by": by}


def agreement_rows(runs: Path, seeds: list[int]) -> list[list[str]]:
    """Per skill policy and N: the share of the transfer demos' actions the frozen skills choose under the
    posterior's labels (mean [min, max] over seeds)."""
    by: dict[tuple[str, int], list[float]] = {}
    for s in seeds:
        res = _json(runs / f"transfer-s{s}" / "results.json")
        for r in (res or {}).get("rows", []):
            if "skill_action_agreement" in r:
                by.setdefault((r["policy"], r["n_demos"]), []).append(r["skill_action_agreement"])
    policies = list(dict.fromkeys(p for p, _ in by))
    counts = sorted({n for _, n in by})
    return [[p, *[mean_range(by.get((p, n), [])) for n in counts]] for p in policies]


def plot_curves(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for p in data["policies"]:
        xs, ms, lo, hi = [], [], [], []
        for n in data["counts"]:
            vals = data["by"].get((p, n))
            if not vals:
                continue
            m, h = mean_ci(vals)
            h = 0.0 if h != h else h
            xs.append(n)
            ms.append(m)
            lo.append(max(0.0, m - h))
            hi.append(min(1.0, m + h))
        ax.plot(xs, ms, marker="o", label=p)
        ax.fill_between(xs, lo, hi, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(data["counts"], [str(c) for c in data["counts"]])
    ax.set_xticks([], minor=True)
    ax.set_xlabel(f"demonstrations of {TRANSFER}")
    ax.set_ylabel("success rate (fresh episodes)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sensitivity_rows(runs: Path, main: str) -> list[list[str]]:
    rows = []
    for opt, value in (("default", ""), *SENSITIVITY):
        name = f"train-{main}-s0" if opt == "default" else f"sens-{main}-{opt}{value}"
        lib = _json(runs / name / "library.json")
        metrics = runs / name / "metrics.jsonl"
        if lib is None or not metrics.is_file():
            continue
        last = json.loads(metrics.read_text().splitlines()[-1])
        rows.append([opt if opt == "default" else f"{opt} = {value}", f"{lib['boundary_f1']['f1']:.3f}",
                     sum(1 for s in lib["skills"] if s.get("segments")),
                     f"{last.get('segments_per_demo', float('nan')):.2f}",
                     f"{last.get('heldout_action_acc', float('nan')):.3f}", f"{last.get('heldout_bc_nll', float('nan')):.3f}"])
    return rows


def write_page(args, runs: Path) -> None:
    labels = [seg_label("lm", lm) for lm in args.lms] + list(ABLATIONS)
    manifest = _json(runs / "demos" / "manifest.json") or {}
    lines = ["# LAST: skills from demonstrations, segmented by a language model (BabyAI)", "",
             "Fu et al. (2024), *Language-guided Skill Learning with Temporal Variational Inference*. An LM cuts "
             "expert demonstrations into short segments; temporal variational inference merges them into K "
             "reusable skills under a description-length objective; the skills then serve as temporally "
             "extended actions for a new long-horizon level.", "",
             "Produced by `.venv/bin/python experiments/last.py` (every figure below; the runs are in "
             f"`{runs}`, which the script resumes). Discovery demos: {manifest.get('count', '–')} "
             f"({args.per_level} per level of {', '.join(DISCOVERY)}; {manifest.get('steps', '–')} steps); "
             f"transfer level {TRANSFER}; seeds {', '.join(map(str, args.seeds))}.", "",
             "## Setup: ours against the paper's", "", SETUP_PLACEHOLDER, "",
             "## Segmentation quality against the bot's own subgoals", "",
             "Segment starts against the starts of the expert bot's subgoals (GoNextTo, Pickup, Drop, Open, "
             "Explore), a start matching within one step; start 0 left out. `sources`: how many demos kept the "
             "LM's answer as given (`lm`), repaired (`repaired`) or fell back to fixed segments of 3 "
             "(`fallback`).", "",
             md_table(["segments", "precision", "recall", "F1", "mean length", "sources", "commonest repair / rejection codes"],
                      segmentation_rows(runs, labels)), "",
             "## Skills found", "",
             "Inferred skill starts (after merging) against the bot's subgoal starts; mean [min, max] over seeds.",
             "", md_table(["segments given", "seeds", "boundary F1", "skills used", "skill segments per demo",
                                "held-out action accuracy"],
                          skill_rows(runs, labels, args.seeds)), ""]
    rows, data = transfer_table(runs, args.seeds)
    if rows:
        plot_curves(data, Path(args.doc).parent / "last" / "transfer.png")
        lines += ["## Transfer to a new long-horizon level", "",
                  f"Success rate on {TRANSFER} in {args.episodes} fresh episodes per point after behaviour cloning "
                  "from N demonstrations: mean over seeds ± the 95% t interval (seeds in brackets). `skills`: a "
                  "high-level policy over the skills learned from the first LM's segments (the code model's); `lm-smollm2`: from SmolLM2's; `none`: over skills "
                  "learned with every step allowed as a boundary (compression only); `fixed`: from fixed "
                  "segments of 3; `flat`: a policy over primitive actions.", "",
                  "![transfer curves](last/transfer.png)", "",
                  md_table(["policy", *[f"N={n}" for n in data["counts"]]], rows), "",
                  "How well can any high-level policy over these frozen skills imitate the new level's demos? The "
                  "share of those demos' actions that the skills choose under the labels the run's posterior gives "
                  "them (every step allowed as a start), mean [min, max] over seeds:", "",
                  md_table(["skills of", *[f"N={n}" for n in data["counts"]]], agreement_rows(runs, args.seeds)),
                  ""]
    if args.lms:
        lines += ["## Sensitivity (seed 0, the first LM's segments)", "",
                  md_table(["setting", "boundary F1", "skills used", "segments per demo", "held-out action acc",
                            "BC NLL"], sensitivity_rows(runs, seg_label("lm", args.lms[0]))), ""]
    lines += ["## Reading", "", PLACEHOLDER, ""]
    setup_file = Path(__file__).parent / "last_setup.md"
    text = "\n".join(lines).replace(SETUP_PLACEHOLDER, setup_file.read_text().strip() if setup_file.is_file()
                                    else "(see experiments/last_setup.md)")
    write_keeping_reading(Path(args.doc), text)


SETUP_PLACEHOLDER = "SETUP_TABLE"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lms", default="qwen2.5-coder-0.5b,smollm2-135m", help=f"bundled LMs for the segmentation ({', '.join(LMS)}); "
                                                        "the first is the one transferred")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--per-level", type=int, default=SIZES["per_level"])
    ap.add_argument("--counts", default=SIZES["counts"])
    ap.add_argument("--episodes", type=int, default=SIZES["episodes"])
    ap.add_argument("--steps", type=int, default=SIZES["steps"], help="training steps (default: the command's)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ray", default=None, help="a Ray address: run the sweeps on that cluster")
    ap.add_argument("--runs", default="runs/last")
    ap.add_argument("--doc", default="docs/results/last.md")
    ap.add_argument("--report-only", action="store_true", help="run nothing: write the page from the runs so far")
    args = ap.parse_args(argv)
    args.lms = [m.strip() for m in args.lms.split(",") if m.strip()]
    for m in args.lms:
        if m not in LMS:
            ap.error(f"unknown LM {m!r}; choose from {', '.join(LMS)}")
    args.seeds = int_list(args.seeds, "--seeds")
    runs = Path(args.runs)
    if not args.report_only:
        for jobs in stage_jobs(args, runs):
            sweep(jobs, runs, args)
    write_page(args, runs)
    print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
