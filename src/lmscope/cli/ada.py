"""`lmscope ada tasks|plan`: the planning worlds of Ada (Mini Minecraft, a household), their tasks and
splits, and oracle planning of one task with the ground-truth domain, checked in the simulator."""

from __future__ import annotations

from lmscope.cli._numbers import integer, positive_number, seed
from lmscope.cli._output import add_force, check_out, command_inputs, command_line, emit, logger

SIZE_MAX = 10_000
DOMAIN_HELP = "the world: minecraft or household"


def _tasks(args):
    from lmscope.planning.worlds import get_world

    world = get_world(args.domain)
    return world, world.make_tasks(args.n_train, args.n_heldout, args.seed)


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
             f"{sum(t.split == 'train' for t in tasks)} train and {sum(t.split == 'heldout' for t in tasks)} "
             f"held-out tasks (seed {args.seed})", ""]
    width = max(len(t.id) for t in tasks)
    lines.append(f"{'id':{width}s}  {'split':7s}  {'template':12s}  instruction")
    for t in tasks:
        lines.append(f"{t.id:{width}s}  {t.split:7s}  {t.template:12s}  {t.instruction}")
    payload = {"world": world.name, "seed": args.seed, "n_train": args.n_train, "n_heldout": args.n_heldout,
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


def _world_options(p) -> None:
    p.add_argument("--domain", required=True, help=DOMAIN_HELP)
    p.add_argument("--n-train", type=integer(1, SIZE_MAX), default=40, help="training tasks (default 40)")
    p.add_argument("--n-heldout", type=integer(1, SIZE_MAX), default=20, help="held-out tasks (default 20)")
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


COMMANDS = {"ada": add_ada}
