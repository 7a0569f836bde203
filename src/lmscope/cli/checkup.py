"""`lmscope checkup`: the model check-up report (spectrum, intruders, forgetting, LASER, tree projections)."""

from __future__ import annotations

from lmscope.cli._help import MODEL_HELP
from lmscope.cli._numbers import positive_int, seed
from lmscope.cli._output import add_force, check_out, command_line, emit, logger


def cmd_checkup(args) -> None:
    from lmscope.checkup import CheckupConfig, run_checkup

    cfg = CheckupConfig(finetune=not args.no_finetune, steps=args.steps, rank=args.rank, seed=args.seed,
                        laser=not args.no_laser, trees=not args.no_trees)
    check_out(args)
    path = run_checkup(args.model, args.out, cfg, quiet=args.quiet, log=logger(args), force=args.force,
                       command=command_line())
    emit(args, {"report": str(path)}, [f"report: {path}"])


def add_checkup(sub, common) -> None:
    c = sub.add_parser("checkup", parents=[common], help="the model check-up report (spectrum, intruders, "
                       "forgetting, LASER, tree projections)",
                       description="Write a report folder (tables, plots, index.html) about a model.")
    c.add_argument("model", nargs="?", default="smollm2-135m", help=MODEL_HELP)
    c.add_argument("--out", default="lmscope-report", help="report folder (default: lmscope-report)")
    c.add_argument("--steps", type=positive_int, default=60, help="steps of the check-up's LoRA fine-tune (default 60)")
    c.add_argument("--rank", type=positive_int, default=8, help="LoRA rank of the check-up's fine-tune (default 8)")
    c.add_argument("--no-finetune", action="store_true", help="no fine-tune comparison (intruders, forgetting)")
    c.add_argument("--no-laser", action="store_true", help="no quick LASER search")
    c.add_argument("--no-trees", action="store_true", help="no tree projections")
    c.add_argument("--seed", type=seed, default=0)
    add_force(c)
    c.set_defaults(func=cmd_checkup)


COMMANDS = {"checkup": add_checkup}
