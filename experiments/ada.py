"""Ada against its baselines in both planning worlds: the reproduction of Wong et al. (2023) at our scale.

Runs, as one sweep (`lmscope.train.sweep`: local processes, or a Ray cluster with --ray), for every
world (minecraft, household), language model (the code-capable bundled model and SmolLM2) and seed:

* ``ada``: `lmscope ada run` (the loop; held-out and test tasks solved with the library after every
  iteration);
* ``no-learning``: `lmscope ada baseline no-learning` (the same loop, every valid candidate kept, nothing
  scored);
* ``oracle-lm-goal``, ``goal-primitive``, ``goal-search``, ``lm-actions``: `lmscope ada baseline NAME`
  (one pass);

plus ``oracle`` (the ground-truth domain and the true goal; no LM) per world and seed. The page,
docs/results/ada.md, gets the solved rate per iteration on the held-out and test tasks (mean and range
over seeds), the baselines, the learned operators against the ground-truth domain, the rejected
candidates by reason, and the cost (LM calls, tokens, planner seconds, wall time).

    .venv/bin/python experiments/ada.py                 # the page (see SIZES; runs resume where they stopped)
    .venv/bin/python experiments/ada.py --report-only   # the page from the runs so far
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from _doc import PLACEHOLDER, md_table, write_keeping_reading
from _doc import mean_range as rate

from lmscope.cli._lists import int_list
from lmscope.train.sweep import SweepJob, run_sweep

WORLDS = ("minecraft", "household")
LMS = {"qwen2.5-coder-0.5b": "coder", "smollm2-135m": "smollm2"}
ONE_PASS = ("oracle-lm-goal", "goal-primitive", "goal-search", "lm-actions")
SIZES = dict(n_train=8, n_heldout=4, n_test=4)
DEFINITION_SAMPLES = 2
NO_LEARNING_LMS = ("qwen2.5-coder-0.5b",)  # the loop without learning: with the code model only (CPU time)
ITERATIONS = {"qwen2.5-coder-0.5b": 5, "smollm2-135m": 2}
NO_LEARNING_ITERATIONS = 3  # the loop without learning: fewer (CPU time; it learns nothing by construction)


SERVERS: dict[str, str] = {}  # label -> an OpenAI-compatible server spec, from --lms LABEL=SPEC


def run_name(kind: str, world: str, lm: str | None, seed: int) -> str:
    return f"{kind}-{world}" + (f"-{LMS.get(lm, lm)}" if lm else "") + f"-s{seed}"


def lm_spec(lm: str) -> str:
    return SERVERS.get(lm, f"local:{lm}")


def _sizes(args) -> list[str]:
    return ["--n-train", str(args.n_train), "--n-heldout", str(args.n_heldout), "--n-test", str(args.n_test)]


def finished(run_dir: Path, iterations: int | None = None) -> bool:
    """Whether a run is done (a loop run: with at least ``iterations``; fewer are continued)."""
    if (run_dir / "result.json").is_file():
        return True
    st = run_dir / "state.json"
    if not (st.is_file() and (run_dir / "index.html").is_file()):
        return False
    state = json.loads(st.read_text())
    return state.get("done", False) and (iterations is None or state["config"]["iterations"] >= iterations)


def job(kind: str, world: str, lm: str | None, seed: int, args, runs: Path) -> SweepJob:
    name = run_name(kind, world, lm, seed)
    out = ["--out", str(runs / name), "--quiet"]
    common = ["--domain", world, "--seed", str(seed), *_sizes(args)] + (["--lm", lm_spec(lm)] if lm else [])
    if kind in ("ada", "no-learning"):
        head = ["ada", "run"] if kind == "ada" else ["ada", "baseline", "no-learning"]
        iters = args.iterations or (ITERATIONS.get(lm, 5) if kind == "ada" else NO_LEARNING_ITERATIONS)
        argv = [*head, *common, "--iterations", str(iters), "--definition-samples",
                str(DEFINITION_SAMPLES), *out]
    else:
        argv = ["ada", "baseline", kind, *common, *out]
    return SweepJob(name, runs / name, argv)


def jobs_of(args, runs: Path) -> list[SweepJob]:
    """Every run, the most informative first (Ada with each LM, then the one-pass baselines, then the
    loop without learning), so a sweep cut short still fills the page's main table."""
    jobs = [job("oracle", w, None, s, args, runs) for w in args.worlds for s in args.seeds]
    cheap = [k for k in ONE_PASS if k != "lm-actions"]  # their goal prompts are Ada's first ones: cached
    for lm in args.lms:
        jobs += [job("ada", w, lm, s, args, runs) for s in args.seeds for w in args.worlds]
        jobs += [job(k, w, lm, s, args, runs) for k in cheap for s in args.seeds for w in args.worlds]
    for lm in args.lms:
        if lm in NO_LEARNING_LMS:
            jobs += [job("no-learning", w, lm, s, args, runs) for s in args.seeds for w in args.worlds]
    for lm in args.lms:
        jobs += [job("lm-actions", w, lm, s, args, runs) for s in args.seeds for w in args.worlds]
    for j in jobs:
        iters = int(j.argv[j.argv.index("--iterations") + 1]) if "--iterations" in j.argv else None
        if finished(j.run_dir, iters):
            j.status = "skipped"
    return jobs


# ------------------------------------------------------------------------------------------ reading runs
def load(run_dir: Path) -> dict | None:
    if (run_dir / "result.json").is_file():
        return json.loads((run_dir / "result.json").read_text())
    if (run_dir / "state.json").is_file():
        st = json.loads((run_dir / "state.json").read_text())
        return st if st.get("done") else None
    return None


def loop_rates(states: list[dict], split: str) -> list[str]:
    """Per iteration: mean [min, max] over seeds of the solved fraction of ``split``."""
    n = max((len(s["history"]) for s in states), default=0)
    out = []
    for i in range(n):
        vals = [s["history"][i][f"{split}_solved"] / s["history"][i][f"{split}_tasks"]
                for s in states if len(s["history"]) > i and s["history"][i].get(f"{split}_tasks")]
        out.append(rate(vals))
    return out


def token_counts(runs: Path, names: list[str], lm: str) -> tuple[int, int]:
    """Prompt and answer tokens (the model's own tokenizer) over the runs' logged LM calls."""
    from lmscope.lm.local import LocalLM

    tok = LocalLM(lm).source.load_tokenizer()
    p = a = 0
    for name in names:
        log = runs / name / "log.jsonl"
        if not log.is_file():
            continue
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if e.get("event") == "lm":
                k = len(e["answers"])
                p += k * len(tok(e["prompt"])["input_ids"])
                a += sum(len(tok(x)["input_ids"]) for x in e["answers"])
    return p, a


def truth_rules(world: str) -> dict[str, tuple[str, ...]]:
    """Ground-truth rule action -> the atoms it adds (the world's rules the agent must learn)."""
    from lmscope.planning.pddl import parse_domain
    from lmscope.planning.worlds import get_world

    w = get_world(world)
    dom = parse_domain(w.oracle_domain())
    return {o.name: tuple(sorted({f"{a.pred} {' '.join(a.args)}".strip() for a in o.add
                                  if not a.pred.startswith(("holding", "slot", "hand"))}))
            for o in dom.operators if o.name not in w.known_actions}


def compare_operators(world: str, states: list[dict]) -> tuple[list[list], set, int, int]:
    """Rows: every accepted candidate (all seeds) with its record, whether it joined the library, what it
    needs and adds, and the ground-truth rules whose product it adds. Returns the rows, the rules found by
    a library operator, the library size and the number of library operators matching no rule."""
    from lmscope.planning.pddl import parse_operators
    from lmscope.planning.worlds import get_world

    skel = get_world(world).skeleton_domain()
    truth = truth_rules(world)
    rows, found, lib, wrong = [], set(), 0, 0
    for s in states:
        for rec in s["ops"].values():
            in_lib = rec["successes"] >= 1 and rec["successes"] / rec["attempts"] >= s["config"]["threshold"]
            op = parse_operators(rec["pddl"], skel, confirm=False)[0]
            adds = {f"{a.pred} {' '.join(a.args)}".strip() for a in op.add}
            # household products are "hot ?o": compare predicates when the rule's atom has a variable
            match = [r for r, prod in truth.items() if any(
                p in adds or any(x.split()[0] == p.split()[0] and "?" in p for x in adds) for p in prod)]
            if in_lib:
                lib += 1
                found.update(match)
                wrong += not match
            rows.append([f"s{s['config']['seed']}", f"`{rec['name']}`", f"{rec['successes']}/{rec['attempts']}",
                         "yes" if in_lib else "no", " ".join(str(x) for x in op.preconditions) or "(none)",
                         " ".join(f"({a})" for a in sorted(adds)),
                         ", ".join(match[:3]) + (" ..." if len(match) > 3 else "") or "none"])
    return rows, found, lib, wrong


def goal_accuracy(runs: Path, world: str, lm: str, args) -> tuple[int, int, int]:
    """Over the finished Ada runs' first iteration (toy examples only in the prompt): training tasks whose
    greedy goal is readable, whose greedy goal is exactly the true goal, and training tasks asked."""
    from lmscope.planning.worlds import get_world

    readable = right = asked = 0
    for seed in args.seeds:
        log = runs / run_name("ada", world, lm, seed) / "log.jsonl"
        if not log.is_file() or load(log.parent) is None:
            continue
        truth = {t.id: set(t.goal) for t in get_world(world).make_tasks(args.n_train, args.n_heldout, seed,
                                                                         n_test=args.n_test)}
        seen = set()
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if e["iteration"] != 0 or e["event"] != "goal" or e["task"] in seen:
                continue
            seen.add(e["task"])  # the first goal event of a task is its greedy goal
            asked += 1
            readable += bool(e["goal"])
            right += bool(e["goal"]) and set(e["goal"]) == truth[e["task"]]
    return readable, right, asked


# ------------------------------------------------------------------------------------------ page
def write_page(args, runs: Path, setup: str) -> None:
    lines = ["# Ada: planning operators learned with language-model guidance, against its baselines", "",
             "Regenerate (runs are kept under `runs/ada`, and resume where they stopped):", "", "```",
             f".venv/bin/python experiments/ada.py --seeds {','.join(map(str, args.seeds))}", "```", "",
             f"Every run: {args.n_train} training tasks, {args.n_heldout} held-out tasks (recipes or templates "
             f"that no training task uses) and {args.n_test} test tasks (new maps and instances of the training "
             "recipes or templates) per world and seed; held-out and test tasks are solved after every "
             "iteration with the library as it stands and are never learned from. Rates are the mean over "
             "seeds with the [min, max] range in brackets.", "", setup, ""]
    cost_rows = []
    for world in args.worlds:
        lines += [f"## {world}", ""]
        orc = [load(runs / run_name("oracle", world, None, s)) for s in args.seeds]
        orc = [o for o in orc if o]
        for lm in args.lms:
            lines += [f"### {lm}", ""]
            ada = [x for x in (load(runs / run_name("ada", world, lm, s)) for s in args.seeds) if x]
            nol = [x for x in (load(runs / run_name("no-learning", world, lm, s)) for s in args.seeds) if x]
            if not ada:
                lines += ["(no finished runs)", ""]
                continue
            its = max(len(a["history"]) for a in ada)
            header = ["method", "split", *[f"iteration {i + 1}" for i in range(its)]]
            rows = []
            for label, st in (("Ada", ada), ("no learning", nol)) if nol else (("Ada", ada),):
                for split in ("train", "heldout", "test"):
                    r = loop_rates(st, split)
                    rows.append([label, split, *(r + [""] * (its - len(r)))])
            lines += [f"Solved fraction per iteration ({len(ada)} seeds; train: training tasks solved so far"
                      + ("" if nol else "; the loop without learning was run with the code model only") + "):",
                      "", md_table(header, rows), ""]
            readable, right, asked = goal_accuracy(runs, world, lm, args)
            lines += [f"Goals (first iteration, toy examples in the prompt, greedy): {readable} of {asked} training tasks got a "
                      f"readable PDDL goal, {right} exactly the true goal.", ""]
            brow = []
            for kind in ("oracle", *ONE_PASS):
                res = orc if kind == "oracle" else [x for x in (load(runs / run_name(kind, world, lm, s))
                                                                for s in args.seeds) if x]
                brow.append([kind, *[rate([r["by_split"][sp]["solved"] / r["by_split"][sp]["tasks"] for r in res
                                           if sp in r["by_split"]]) for sp in ("train", "heldout", "test")]])
            lines += ["One-pass baselines (nothing learned):", "", md_table(["baseline", "train", "heldout", "test"],
                                                                           brow), ""]
            op_rows, found, lib, wrong = compare_operators(world, ada)
            n_rules = len(truth_rules(world))
            lines += [f"Learned operators against the ground-truth domain: over the seeds, {len(op_rows)} candidate "
                      f"definitions passed validation and {lib} joined a library; the libraries add the product of "
                      f"{len(found)} of the {n_rules} rule actions the agent must learn"
                      + (f" ({', '.join(sorted(found))})" if found else "") + f"; {wrong} library operators match no "
                      "rule." + (" Every accepted candidate:" if op_rows else ""), ""]
            if op_rows:
                lines += [md_table(["seed", "operator", "runs reaching its effects", "library", "needs", "adds",
                                    "ground-truth rules with that product"], op_rows[:40]), ""]
            codes = Counter(r["code"] for a in ada for r in a["rejected"])
            total = sum(len(a["ops"]) for a in ada) + sum(codes.values())
            lines += [f"Candidate definitions: {total}; accepted {sum(len(a['ops']) for a in ada)}; rejected by "
                      "reason: " + (", ".join(f"{k} {v}" for k, v in codes.most_common()) or "none") + ".", ""]
            names = [run_name(k, world, lm, s) for k in ("ada",) for s in args.seeds]
            counted = args.tokens and lm not in SERVERS  # a server's tokenizer is not at hand
            ptok, atok = token_counts(runs, names, lm) if counted else (0, 0)
            calls = sum(a["counters"]["lm_calls"] for a in ada)
            solved = sum(a["history"][-1]["train_solved"] for a in ada)
            cost_rows.append([world, lm, calls, f"{ptok:,} / {atok:,}" if counted else "–",
                              f"{calls / solved:.1f}" if solved else "– (none solved)",
                              f"{sum(a['counters']['planner_seconds'] for a in ada):.1f}",
                              f"{sum(a['counters']['controller_states'] for a in ada):,}",
                              f"{sum(a['counters']['seconds'] for a in ada) / 60:.1f}"])
    lines += ["## Cost (Ada runs, summed over seeds)", "",
              md_table(["world", "LM", "LM calls", "tokens (prompt / answer)", "LM calls per solved training task",
                        "planner s", "controller states", "wall min"], cost_rows), "",
              "## Reading", "", PLACEHOLDER, ""]
    write_keeping_reading(Path(args.doc), "\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", default=",".join(WORLDS))
    ap.add_argument("--lms", default=",".join(LMS), help="bundled model names, or LABEL=SPEC for a model behind an "
                    "OpenAI-compatible server (e.g. qwen7b=http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B-Instruct)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--iterations", type=int, default=None, help="iterations (default: 5 with the code model, "
                                                                 "2 with SmolLM2)")
    ap.add_argument("--n-train", type=int, default=SIZES["n_train"])
    ap.add_argument("--n-heldout", type=int, default=SIZES["n_heldout"])
    ap.add_argument("--n-test", type=int, default=SIZES["n_test"])
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (default 1: each LM run uses the cores)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ray", default=None, help="a Ray address: run the sweep on that cluster")
    ap.add_argument("--runs", default="runs/ada")
    ap.add_argument("--doc", default="docs/results/ada.md")
    ap.add_argument("--no-tokens", dest="tokens", action="store_false", help="do not count tokens")
    ap.add_argument("--report-only", action="store_true", help="run nothing: write the page from the runs so far")
    args = ap.parse_args(argv)
    args.worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    args.lms = [m.strip() for m in args.lms.split(",") if m.strip()]
    for w in args.worlds:
        if w not in WORLDS:
            ap.error(f"unknown world {w!r}")
    for i, m in enumerate(args.lms):
        if "=" in m:
            label, spec = (x.strip() for x in m.split("=", 1))
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", label) or not spec.startswith(("http://", "https://")):
                ap.error(f"--lms {m!r}: LABEL=SPEC takes a lower-case label and an http(s):// server spec")
            SERVERS[label] = spec
            args.lms[i] = label
        elif m not in LMS:
            ap.error(f"unknown LM {m!r}; choose from {', '.join(LMS)} or give LABEL=http://...")
    args.seeds = int_list(args.seeds, "--seeds")
    runs = Path(args.runs)
    if not args.report_only:
        jobs = jobs_of(args, runs)
        res = run_sweep(jobs, runs, workers=args.jobs, threads=args.threads, ray=args.ray)
        if res["failed"]:
            print(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])}", file=sys.stderr)
    setup = (Path(__file__).parent / "ada_setup.md").read_text()
    iterations = ", ".join(f"{args.iterations or ITERATIONS.get(lm, 5)} ({lm})" for lm in args.lms)
    if not args.iterations and any(lm in NO_LEARNING_LMS for lm in args.lms):
        iterations += f"; the loop without learning {NO_LEARNING_ITERATIONS}"
    for key, value in (("n_train", args.n_train), ("n_heldout", args.n_heldout), ("n_test", args.n_test),
                       ("iterations", iterations)):  # the setup table states what was run
        setup = setup.replace("{" + key + "}", str(value))
    write_page(args, runs, setup)
    print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
