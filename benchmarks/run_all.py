"""Run the benchmarks (full size by default) in sequence, then regenerate BENCHMARKS.md from their JSON.

    .venv/bin/python benchmarks/run_all.py                 # all of them at --size full, then BENCHMARKS.md
    .venv/bin/python benchmarks/run_all.py --smollm2       # also WeightWatcher vs lmscope on SmolLM2-135M
    .venv/bin/python benchmarks/run_all.py --report-only   # only rewrite BENCHMARKS.md from results/*.json

BENCHMARKS.md holds only figures read from ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import BENCH_DIR, REPO, RESULTS_DIR

# (script, extra arguments, result file)
RUNS = [
    ("bench_memory.py", [], "bench_memory.json"),
    ("bench_intruders.py", [], "bench_intruders.json"),
    ("bench_weightwatcher.py", [], "bench_weightwatcher.json"),
    ("bench_eigensolvers.py", [], "bench_eigensolvers.json"),
    ("bench_laser.py", [], "bench_laser.json"),
    ("bench_trees.py", [], "bench_trees.json"),
    ("bench_train.py", [], "bench_train.json"),
    ("bench_lm_score.py", [], "bench_lm_score.json"),
    ("bench_pushdown.py", [], "bench_pushdown.json"),
    ("bench_planner.py", [], "bench_planner.json"),
    ("bench_ada_lm.py", [], "bench_ada_lm.json"),
    ("bench_world_planner.py", [], "bench_world_planner.json"),
    ("bench_skills_demos.py", [], "bench_skills_demos.json"),
    ("bench_skills_train.py", [], "bench_skills_train.json"),
    ("bench_sandbox.py", [], "bench_sandbox.json"),
]
SMOLLM2 = ("bench_weightwatcher.py", ["--model", "smollm2-135m"], "bench_weightwatcher-smollm2-135m.json")

TITLES = {
    "bench_memory": "Peak memory of `lmscope spectrum` on a sharded checkpoint",
    "bench_intruders": "Intruder dimensions of N fine-tuned checkpoints against one base",
    "bench_weightwatcher": "Spectrum metrics: lmscope vs WeightWatcher",
    "bench_eigensolvers": "Eigensolvers: the floor under lmscope's spectrum time",
    "bench_laser": "LASER search: configs per second against the straightforward loop",
    "bench_trees": "Tree projections: fast SCI charts against the reference procedure",
    "bench_train": "Training throughput: lmscope's loop against a plain PyTorch loop",
    "bench_lm_score": "LM scoring: batched strategies against one forward pass per continuation",
    "bench_pushdown": "Pushdown layers: beam search with reordered caches, and the tape's training cost",
    "bench_planner": "Classical planners: Fast Downward against pyperplan, and the planner cache",
    "bench_ada_lm": "Ada's language-model cost: LM calls per solved task, and a rerun from the LM cache",
    "bench_world_planner": "Oracle planning on the planning worlds' tasks: Fast Downward against pyperplan, "
                           "and the planner cache",
    "bench_skills_demos": "BabyAI expert demonstrations: episodes per second over all cores against one process",
    "bench_skills_train": "LAST training steps per second against plain behaviour cloning on the same batches",
    "bench_sandbox": "The sandbox for LM-written code: the pool against one at a time, and its overhead against a "
                     "plain subprocess",
}


def run(size: str, extra: list[str], smollm2: bool, only: list[str] | None) -> list[str]:
    failed = []
    for script, args, _ in RUNS + ([SMOLLM2] if smollm2 else []):
        if only and Path(script).stem not in only:
            continue
        cmd = [sys.executable, str(BENCH_DIR / script), "--size", size, *args, *extra]
        print(f"\n=== {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=REPO)
        print(f"=== {script}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(script)
    return failed


# --------------------------------------------------------------------------------------------------
def md_table(header: list, rows: list[list]) -> str:
    def cell(x) -> str:
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def machine_line(m: dict) -> str:
    parts = [m.get("date", "?"), f"{m.get('cpu_model') or m.get('processor', '?')}",
             f"{m.get('cpu_count')} CPUs", f"{m.get('memory_total_gb', '?')} GB RAM",
             f"torch {m.get('torch')}", f"threads {m.get('torch_threads')}",
             f"load average at start {m.get('load_avg_1m_at_start', '?')}"]
    if "weightwatcher" in m:
        parts.append(f"weightwatcher {m['weightwatcher']}")
    return ", ".join(str(p) for p in parts)


def headline(r: dict) -> str:
    name = r["benchmark"]
    if "headline" in r:
        return r["headline"]
    if name == "bench_memory":
        return (f"lmscope's peak RSS is **{r['ratio_lmscope_peak_to_size']:.3f}x** the checkpoint size "
                f"(target < {r['target_ratio']}: {'met' if r['target_met'] else 'not met'}); the baseline's "
                f"is {r['ratio_baseline_peak_to_size']:.3f}x. Largest singular values identical within "
                f"rtol 1e-4: {'yes' if r['results_equal'] else 'NO'}.")
    if name == "bench_intruders":
        runs = r["runs"]
        big = runs[str(max(int(n) for n in runs))]
        ordered = sorted(runs.items(), key=lambda x: int(x[0]))
        speeds = ", ".join(f"N={n}: **{v['speedup']:.2f}x**" for n, v in ordered)
        return (f"Speed-up baseline / lmscope: {speeds} (target >= {r['target_speedup']}x at N={big['n']}: "
                f"{'met' if r['target_met'] else 'not met'}). Per-matrix intruder counts identical: "
                f"{'yes' if r['results_equal'] else 'NO'}.")
    if name == "bench_weightwatcher":
        rt, c = r["ratio"], r["alpha_check"]
        met = "met" if r["target_met"] else "not met"
        return (f"WeightWatcher / lmscope time on {r['model']}, {r['threads']} thread(s) each, median (best) of "
                f"{len(r['times_s']['memory/ww'])} alternating runs: **{rt['memory']['median']:.2f}x** "
                f"({rt['memory']['best']:.2f}x) from the same loaded model, **{rt['disk']['median']:.2f}x** "
                f"({rt['disk']['best']:.2f}x) from the same files (target >= {r['target_ratio']:.0f}x on the "
                f"median with alpha within {c['tolerance']}: {met}). Alpha within {c['tolerance']} on every "
                f"one of the {c['matrices']} matrices where both fit a tail of >= {c['min_tail']} eigenvalues: "
                f"{'yes' if c['passed'] else 'NO'} (max |diff| {c['max_abs_diff']:.1e}). Load average "
                f"{r['load_avg_before'][0]:.2f} before, {r['load_avg_after'][0]:.2f} after."
                + ceiling_line(r))
    if name == "bench_laser":
        return (f"Speed-up straightforward / lmscope: **{r['speedup']:.1f}x** on {r['configs']} configs x "
                f"{r['examples']} examples of {r['model']} (target >= {r['target_speedup']:.0f}x: "
                f"{'met' if r['target_met'] else 'not met'}). Per-example metrics identical (top-1 and top-5 "
                f"decisions equal, answer log-probs within {r['max_abs_logprob_diff']:.1e}): "
                f"{'yes' if r['results_equal'] else 'NO'}.")
    if name == "bench_trees":
        w = r["words"]
        return (f"Speed-up reference / fast: **{r['speedup']:.1f}x** on {r['sentences']} sentences of {min(w)}..{max(w)} "
                f"words with {r['model']} ({r['passes_reference']} forward passes one at a time against "
                f"{r['passes_fast']} in {r['calls_fast']} batched calls). Charts identical (max |difference| "
                f"{r['max_abs_chart_diff']:.1e}, same trees for {r['identical_trees']} of {r['sentences']} "
                f"sentences): {'yes' if r['results_equal'] else 'NO'}.")
    if name == "bench_train":
        parts = []
        for wl, w in r["workloads"].items():
            t = {k: w["tokens"] / v for k, v in w["median_cpu_seconds"].items()}
            extra = "".join(f"; with the grokking evaluation: {100 * v:+.1f}% CPU"
                            for k, v in w["overhead"].items() if k == "lmscope+grok-eval")
            every = "every step" if w["eval_every"] == 1 else f"every {w['eval_every']} steps"
            parts.append(f"{wl} (metrics {every}, checkpoints every {w['ckpt_every']} steps): "
                         f"**{100 * w['overhead']['lmscope']:+.1f}%** of the plain loop's CPU time "
                         f"({t['plain']:,.0f} → {t['lmscope']:,.0f} tokens per CPU second), "
                         f"{100 * w['overhead_wall']['lmscope']:+.1f}% of its wall time (median per-trial "
                         f"ratio {w['median_trial_ratio_cpu']['lmscope']:.3f} CPU, "
                         f"{w['median_trial_ratio_wall']['lmscope']:.3f} wall){extra}")
        m = r["machine"]
        return (f"Overhead of lmscope's training loop (median of {r['repeats']} interleaved trials; target under "
                f"10%): " + "; ".join(parts) + f". Same final weights as the plain loop: "
                f"{'yes' if r['same_final_weights'] else 'NO'}. With one thread, CPU time is the work done; wall "
                f"time also counts waiting for the other jobs on the machine ({m.get('cpu_count')} CPUs, load "
                f"average {m.get('load_avg_1m_at_start', '?')}).")
    if name == "bench_lm_score":
        w = r["workloads"]
        parts = [f"{k}: **{v['seconds_reference'] / v['seconds_auto']:.1f}x** (shared {v['seconds_flat'] / v['seconds_shared']:.2f}x "
                 f"flat's speed)" for k, v in w.items()]
        worst = max(max(v[f"max_abs_diff_{s}"] for s in ("flat", "shared", "auto")) for v in w.values())
        return (f"Speed-up of the default (auto) over one forward pass per continuation on {r['model']}: "
                + "; ".join(parts) + f". Log-probs equal to the reference within {worst:.1e} (tolerance 1e-4): "
                f"{'yes' if r['results_equal'] else 'NO'}.")
    return ""


def ceiling_line(r: dict) -> str:
    p = r.get("phases")
    if not p:
        return ""
    lin = p["gram_s"] + p["eigvalsh_s"]
    return (f" Where the time goes (one pass over the same matrices): WeightWatcher's float64 SVDs "
            f"{p['ww_svd_s']:.2f} s; lmscope's Gram matrices {p['gram_s']:.2f} s, eigenvalues {p['eigvalsh_s']:.2f} s, "
            f"fits and summaries {p['metrics_s']:.2f} s. Even with everything but its Gram matrices and "
            f"eigenvalues free, lmscope would reach **{p['ceiling_memory_ratio']:.2f}x** from memory (WW's median "
            f"over those {lin:.2f} s).")


def section(r: dict) -> str:
    name = r["benchmark"]
    title = TITLES.get(name, name)
    if name == "bench_weightwatcher":
        title += f" ({r['model']}, {r.get('threads', 1)} thread{'s' if r.get('threads', 1) != 1 else ''})"
    if name == "bench_pushdown":
        title += f" (d_model {r['model_config']['d_model']})"
    lines = [f"## {title}", ""]
    if r.get("size") != "full":
        lines += [f"*Smoke-size run (`--size {r.get('size')}`): not the reference figures.*", ""]
    measures = r["measures"][:1].upper() + r["measures"][1:]
    lines += [f"**What is measured.** {measures}.", "", headline(r), "",
              "Command:", "", "```", r["command"], "```", ""]
    lines += [md_table(r["table"]["header"], r["table"]["rows"]), ""]
    if "per_matrix_table" in r:
        lines += ["Per matrix (a few rows):", "", md_table(r["per_matrix_table"]["header"],
                                                           r["per_matrix_table"]["rows"]), ""]
    if name == "bench_weightwatcher":
        cpus = r["machine"].get("cpu_count") or 1
        # the load before the run is other work; the load after includes the benchmark's own threads
        if r.get("threads", 1) > 1 and r["load_avg_before"][0] > cpus - r["threads"] + 0.5:
            lines += [f"*Caveat: {r['threads']} threads on {cpus} CPUs already busy with other work (load above "
                      "the CPU count): WeightWatcher's BLAS threads spend most of the time waiting for each other "
                      "(its one-thread runs are many times faster), so these ratios measure that contention, not "
                      "the two methods. The one-thread figures are the fair comparison here.*", ""]
        elif r["load_avg_before"][0] > cpus - r.get("threads", 1) + 0.5:
            lines += [f"*Caveat: the machine was busy with other work during this run (load average before it "
                      f"{r['load_avg_before'][0]:.1f} on {cpus} CPUs): both sides' times are inflated and the ratios noisier than on an idle "
                      "machine; the runs alternate which side goes first so that both share the same "
                      "conditions.*", ""]
        lines += [f"WeightWatcher's ESD: {r['ww_esd']}.", ""]
    lines += [f"Run: {machine_line(r['machine'])}.", ""]
    return "\n".join(lines)


def write_markdown(out: Path) -> Path:
    results = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            print(f"skipping unreadable {path}", file=sys.stderr)
    order = {"bench_memory": 0, "bench_intruders": 1, "bench_weightwatcher": 2, "bench_eigensolvers": 2.5, "bench_laser": 3, "bench_trees": 4,
             "bench_train": 5, "bench_lm_score": 6, "bench_pushdown": 7,
             "bench_planner": 8, "bench_world_planner": 8.5, "bench_ada_lm": 8.7}
    results.sort(key=lambda r: (order.get(r.get("benchmark"), 9), r.get("model", ""), r.get("threads", 0)))
    lines = ["# Benchmarks", "",
             "Generated by `benchmarks/run_all.py` from `benchmarks/results/*.json`; every figure below "
             "comes from those files. Each performance figure is a ratio against a baseline measured in the "
             "same run on the same data, with the compared outputs checked equal. See "
             "`benchmarks/README.md`.", ""]
    if not results:
        lines += ["No results yet: run `.venv/bin/python benchmarks/run_all.py`.", ""]
    lines += [section(r) for r in results]
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["small", "full"], default="full")
    ap.add_argument("--threads", type=int, help="passed to every benchmark")
    ap.add_argument("--smollm2", action="store_true", help="also compare with WeightWatcher on smollm2-135m")
    ap.add_argument("--only", help="comma-separated benchmark names, e.g. bench_memory,bench_intruders")
    ap.add_argument("--report-only", action="store_true", help="only regenerate BENCHMARKS.md")
    ap.add_argument("--out", default=str(REPO / "BENCHMARKS.md"), help="where to write the Markdown "
                    "(default: BENCHMARKS.md at the repo root)")
    args = ap.parse_args()
    failed = []
    if not args.report_only:
        extra = ["--threads", str(args.threads)] if args.threads else []
        only = [s.strip() for s in args.only.split(",")] if args.only else None
        failed = run(args.size, extra, args.smollm2, only)
    path = write_markdown(Path(args.out))
    print(f"\nwrote {path}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
