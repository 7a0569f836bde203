"""`lmscope ada tasks|plan|run|baseline`: the planning worlds of Ada (Mini Minecraft, a household), their tasks and
splits, oracle planning of one task with the ground-truth domain, the Ada loop and its baselines."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._numbers import integer, positive_number, seed
from lmscope.cli._output import add_force, check_out, command_inputs, command_line, emit, logger
from lmscope.errors import LmscopeError

SIZE_MAX = 10_000
DOMAIN_HELP = "the world: minecraft or household"


def _tasks(args):
    from lmscope.planning.worlds import get_world

    world = get_world(args.domain)
    return world, world.make_tasks(args.n_train, args.n_heldout, args.seed, n_test=args.n_test)


def _write_tasks(args, world, tasks) -> None:
    """OUT/tasks.jsonl, OUT/domain.pddl (the ground truth) and OUT/problems/<id>.pddl, atomically."""
    from lmscope._io import write_jsonl, write_text
    from lmscope.outputs import output_dir

    with output_dir(args.out, command_inputs(args), command=command_line() or "lmscope ada tasks",
                    force=args.force, checked=True) as tmp:
        write_jsonl(tmp / "tasks.jsonl", [t.to_dict() for t in tasks])
        write_text(tmp / "domain.pddl", world.oracle_domain())
        for t in tasks:
            write_text(tmp / "problems" / f"{t.id}.pddl", world.problem(t))


def cmd_ada_tasks(args) -> None:
    world, tasks = _tasks(args)
    if args.out:
        check_out(args)
        _write_tasks(args, world, tasks)
    lines = [f"{world.name}: {world.description}",
             f"{sum(t.split == 'train' for t in tasks)} train, {sum(t.split == 'heldout' for t in tasks)} "
             f"held-out and {sum(t.split == 'test' for t in tasks)} test tasks (seed {args.seed})", ""]
    width = max(len(t.id) for t in tasks)
    lines.append(f"{'id':{width}s}  {'split':7s}  {'template':12s}  instruction")
    for t in tasks:
        lines.append(f"{t.id:{width}s}  {t.split:7s}  {t.template:12s}  {t.instruction}")
    payload = {"world": world.name, "seed": args.seed, "n_train": args.n_train, "n_heldout": args.n_heldout,
               "n_test": args.n_test,
               "tasks": [t.to_dict() for t in tasks]}
    if args.out:
        payload["out"] = str(args.out)
        lines.append(f"\nwrote tasks.jsonl, domain.pddl and problems/ to {args.out}")
    emit(args, payload, lines)


def cmd_ada_plan(args) -> None:
    from lmscope.planning.planner import available_planners
    from lmscope.planning.worlds import find_task, oracle_plan

    world, tasks = _tasks(args)
    task = find_task(tasks, args.task)
    if args.planner not in ("auto", "fast-downward", "pyperplan"):
        from lmscope.errors import LmscopeError

        raise LmscopeError(f"unknown planner {args.planner!r}; choose from auto, fast-downward, pyperplan")
    logger(args)(f"planning {task.id} with the ground-truth {world.name} domain "
                 f"({args.planner}; installed: {', '.join(available_planners()) or 'none'})")
    res = oracle_plan(world, task, planner=args.planner, time_limit=args.time_limit)
    p = res.plan
    lines = [f"{task.id} ({task.split}): {task.instruction}",
             f"planner: {p.planner}, {p.status} in {p.seconds:.2f} s" + (" (cached)" if p.cached else "")
             + (f": {p.message}" if p.message and not p.solved else "")]
    if p.solved:
        lines.append(f"plan ({len(p.actions)} actions):")
        lines += [f"  {i:3d}  ({' '.join((name, *a))})" for i, (name, a) in enumerate(p.actions)]
        ex = res.execution
        if ex.success:
            lines.append(f"execution: success, {ex.steps} actions, goal reached")
        elif ex.failed_at is not None:
            lines.append(f"execution: failed at action {ex.failed_at}: {ex.reason}")
        else:
            lines.append(f"execution: failed: {ex.reason}")
    emit(args, res.to_dict(), lines)


def _run_summary_lines(summary: dict) -> list[str]:
    lines = [f"Ada on {summary['world']} with {summary['lm']}: {len(summary['history'])} iterations"]
    for h in summary["history"]:
        parts = [f"{s} {h[s + '_solved']}/{h[s + '_tasks']}" for s in ("train", "heldout", "test")
                 if s + "_tasks" in h]
        lines.append(f"  iteration {h['iteration']}: solved " + ", ".join(parts)
                     + f"; library {h['library']} of {h['candidates']} candidates")
    c = summary["counters"]
    lines.append(f"cost: {c['lm_calls']} LM calls, {c['planner_calls']} planner calls "
                 f"({c['planner_seconds']:.1f} s), {c['controller_states']} controller states")
    for o in summary["library"]:
        lines.append(f"  learned {o['name']}: {o['successes']}/{o['attempts']} runs reached its effects"
                     if summary["config"]["learn"] else f"  kept {o['name']} (not scored: no learning)")
    return lines


def cmd_ada_run(args, learn: bool = True) -> None:
    from lmscope.cli.lm import lm_from_args, log_cache
    from lmscope.planning.ada import AdaConfig, run_ada
    from lmscope.planning.worlds import get_world
    from lmscope.report.planning import write_ada_report

    world = get_world(args.domain)
    config = AdaConfig.from_args(args, learn=learn)
    # the LM cache file is written too: the run folder may not be it, hold it or lie inside it
    check_out(args, kind="run", run_markers=("state.json",), extra=[args.lm_cache] if args.lm_cache else ())
    lm = lm_from_args(args)
    try:
        summary = run_ada(world, lm, args.out, config, quiet=args.quiet or args.json)
        log_cache(args, lm)
    finally:
        lm.close()
    write_ada_report(summary, args.out, command=command_line())
    lines = _run_summary_lines(summary) + [f"report: {Path(args.out) / 'index.html'}"]
    emit(args, summary, lines)


def cmd_ada_baseline(args) -> None:
    from lmscope.planning.baselines import BASELINES, run_baseline
    from lmscope.planning.worlds import get_world

    if args.name not in BASELINES:
        raise LmscopeError(f"unknown baseline {args.name!r}; choose from {', '.join(BASELINES)}")
    if args.name == "no-learning":
        if not args.out:
            raise LmscopeError("the no-learning baseline is a run of the loop: give its run folder with --out")
        cmd_ada_run(args, learn=False)
        return
    from lmscope.cli.lm import lm_from_args, log_cache

    world = get_world(args.domain)
    check_out(args)
    lm = None if args.name == "oracle" else lm_from_args(args)
    try:
        def go(dest):
            return run_baseline(args.name, world, lm, dest, seed=args.seed, n_train=args.n_train,
                                n_heldout=args.n_heldout, n_test=args.n_test, planner=args.planner,
                                time_limit=args.time_limit, max_states=args.max_states,
                                quiet=args.quiet or args.json)

        if args.out:
            from lmscope.outputs import output_dir

            with output_dir(args.out, command_inputs(args), command=command_line(), force=args.force,
                            checked=True) as tmp:
                res = go(tmp)
        else:
            res = go(None)
        if lm is not None:
            log_cache(args, lm)
    finally:
        if lm is not None:
            lm.close()
    lines = [f"baseline {args.name} on {world.name}" + (f" with {res['lm']}" if res["lm"] else "")]
    lines += [f"  {s}: {v['solved']}/{v['tasks']} solved" for s, v in res["by_split"].items()]
    if args.out:
        lines.append(f"wrote result.json and log.jsonl to {args.out}")
    emit(args, res, lines)


def _world_options(p) -> None:
    p.add_argument("--domain", required=True, help=DOMAIN_HELP)
    p.add_argument("--n-train", type=integer(1, SIZE_MAX), default=40, help="training tasks (default 40)")
    p.add_argument("--n-heldout", type=integer(1, SIZE_MAX), default=20, help="held-out tasks (default 20)")
    p.add_argument("--n-test", type=integer(0, SIZE_MAX), default=0,
                   help="test tasks: new instances of the training recipes or templates (default 0)")
    p.add_argument("--seed", type=seed, default=0, help="the seed of task generation (default 0)")


def add_ada(sub, common) -> None:
    ada = sub.add_parser("ada", help="Ada: planning worlds, their tasks, and planning with PDDL operators")
    asub = ada.add_subparsers(dest="ada_command", metavar="ACTION", required=True)
    at = asub.add_parser("tasks", parents=[common], help="list a world's generated tasks and their splits",
                         description="Generate a world's tasks (seeded) and list them: id, split (train or "
                                     "heldout), template and instruction. Held-out tasks need recipes "
                                     "(minecraft) or templates (household) that no training task uses.")
    _world_options(at)
    at.add_argument("--out", metavar="DIR", help="also write DIR/tasks.jsonl, DIR/domain.pddl (the ground-truth "
                                                 "domain) and DIR/problems/ID.pddl")
    add_force(at)
    at.set_defaults(func=cmd_ada_tasks)
    ap = asub.add_parser("plan", parents=[common], help="plan one task with the ground-truth domain and run "
                                                        "the plan in the simulator",
                         description="Plan one generated task with the world's hand-written PDDL domain (the "
                                     "oracle), then execute the plan's primitive actions in the world's "
                                     "simulator: success, or the first action that failed and why. The "
                                     "task list is the one `lmscope ada tasks` shows with the same options.")
    _world_options(ap)
    ap.add_argument("--task", required=True, help="the task id (see lmscope ada tasks)")
    ap.add_argument("--planner", default="auto", help="auto (Fast Downward when installed, else pyperplan), "
                                                      "fast-downward or pyperplan")
    ap.add_argument("--time-limit", type=positive_number, default=10.0, metavar="S",
                    help="the planner's time limit in seconds (default 10)")
    ap.set_defaults(func=cmd_ada_plan)

    from lmscope.cli._settings import add_settings
    from lmscope.cli.lm import add_lm_arguments
    from lmscope.planning.ada import AdaConfig

    ar = asub.add_parser("run", parents=[common], help="the Ada loop: learn planning operators with an LM",
                         description="Run (or resume) the Ada loop on a world's training tasks: the LM proposes "
                                     "goals, plan sketches and PDDL operators; candidates are validated, planned "
                                     "with and executed by a low-level search over primitive actions; operators "
                                     "that work join the library. Held-out and test tasks are solved with the "
                                     "library after every iteration. Writes log.jsonl (every prompt, answer, "
                                     "candidate, plan and execution), state.json (resume), index.html, "
                                     "library.pddl, history.csv, candidates.csv and rejected.csv to --out.")
    def loop_options(p, out_help: str, out_required: bool) -> None:
        p.add_argument("--domain", required=True, help=DOMAIN_HELP)
        add_settings(p, AdaConfig)
        p.add_argument("--out", required=out_required, metavar="DIR", help=out_help)
        add_force(p)
        add_lm_arguments(p)

    loop_options(ar, "the run folder (an existing run of the same settings resumes)", True)
    ar.set_defaults(func=cmd_ada_run)

    ab = asub.add_parser("baseline", parents=[common], help="a baseline: oracle, oracle-lm-goal, goal-primitive, "
                                                            "goal-search, lm-actions or no-learning",
                         description="Solve every task once with a baseline: oracle (the ground-truth domain and "
                                     "the true goal), oracle-lm-goal (the ground-truth domain and the LM's goal), "
                                     "goal-primitive (the LM's goal planned over the given primitive actions "
                                     "only), goal-search (the LM's goal reached by the low-level search alone, "
                                     "within --max-states), lm-actions (the LM writes the primitive-action "
                                     "plan) or no-learning "
                                     "(the Ada loop with every candidate operator kept and nothing scored; takes "
                                     "the options of `lmscope ada run`).")
    ab.add_argument("name", help="the baseline")
    loop_options(ab, "write result.json and log.jsonl (no-learning: the run folder)", False)
    ab.set_defaults(func=cmd_ada_baseline)


COMMANDS = {"ada": add_ada}
