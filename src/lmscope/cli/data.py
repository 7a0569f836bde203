"""`lmscope data task|make`: bundled fine-tuning tasks and synthetic suites with gold trees."""

from __future__ import annotations

import json

from lmscope.cli._numbers import integer, positive_int, seed
from lmscope.cli._output import add_force, check_out, command_line, emit
from lmscope.data.tasks import MAX_ROWS
from lmscope.errors import LmscopeError


def cmd_data_task(args) -> None:
    from lmscope._io import write_jsonl
    from lmscope.data.tasks import TASKS, make_task

    if args.name is None:
        emit(args, {"tasks": TASKS}, [f"{k:12s} {v}" for k, v in TASKS.items()])
        return
    check_out(args, kind="file")
    rows = make_task(args.name, args.n, seed=args.seed)
    if args.out:
        from lmscope.outputs import output_file

        with output_file(args.out, checked=True) as tmp:
            write_jsonl(tmp, rows)
        emit(args, {"out": args.out, "n": len(rows)}, [f"wrote {len(rows)} rows to {args.out}"])
    else:
        for r in rows:
            print(json.dumps(r))


def cmd_data_make(args) -> None:
    from lmscope.data.suites import SUITES, write_suite

    if args.suite is None:
        emit(args, {"suites": {k: v.description for k, v in SUITES.items()}},
             [f"{k:20s} {v.description}" for k, v in SUITES.items()])
        return
    if args.suite not in SUITES:
        raise LmscopeError(f"unknown suite {args.suite!r}; choose one of {', '.join(SUITES)}")
    options = {}
    for flag, key in (("--k", "k"), ("--max-depth", "max_depth"), ("--train-max-depth", "train_max_depth")):
        value = getattr(args, key)
        if value is not None:
            if key not in SUITES[args.suite].options:
                raise LmscopeError(f"{flag} applies only to the dyck suite, not {args.suite}")
            options[key] = value
    if not args.out:
        raise LmscopeError("give --out DIR, the folder for the split files and info.json")
    info = write_suite(args.suite, args.out, args.n_train, args.n_val, args.n_gen, seed=args.seed,
                       force=args.force, command=command_line(), **options)
    counts = ", ".join(f"{s} {n}" for s, n in info["counts"].items())
    emit(args, {"out": str(args.out), **info},
         [f"wrote {args.out}: {counts} ({args.suite}, seed {args.seed})"]
         + [f"  {s}: {rule}" for s, rule in info["rules"].items()])


def add_data(sub, common) -> None:
    d = sub.add_parser("data", help="bundled data and synthetic suites with gold trees")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dt = dsub.add_parser("task", parents=[common], help="list bundled fine-tuning tasks, or generate one as JSONL")
    dt.add_argument("name", nargs="?")
    dt.add_argument("--n", type=integer(1, MAX_ROWS), default=2000)
    dt.add_argument("--seed", type=seed, default=0)
    dt.add_argument("--out", help="JSONL file (default: stdout; an existing file of that name is replaced)")
    dt.set_defaults(func=cmd_data_task)
    dm = dsub.add_parser("make", parents=[common], help="list the synthetic suites, or write one (train/val/gen "
                         "JSONL with gold trees)",
                         description="Write a synthetic suite with gold binary trees into a folder: one JSONL "
                                     "per split (train.jsonl, val.jsonl, and gen.jsonl or, for dyck, "
                                     "ood.jsonl or deep.jsonl) and info.json (suite, seed, counts, the rule "
                                     "each split obeys). Rows are {text, target, tree, split}. Without a suite, list "
                                     "the suites.")
    dm.add_argument("suite", nargs="?", help="question-formation, tense-inflection, dyck or arith")
    dm.add_argument("--out", help="output folder (replaced as a whole)")
    add_force(dm)
    dm.add_argument("--n-train", type=integer(0, MAX_ROWS), default=10000, help="train rows (default 10000)")
    dm.add_argument("--n-val", type=integer(0, MAX_ROWS), default=1000, help="in-distribution validation rows (default 1000)")
    dm.add_argument("--n-gen", type=integer(0, MAX_ROWS), default=1000, help="generalization (gen / ood) rows (default 1000)")
    dm.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    dm.add_argument("--k", type=positive_int, help="dyck: number of bracket types (default 2)")
    dm.add_argument("--max-depth", type=positive_int, help="dyck: maximum nesting depth (default 10)")
    dm.add_argument("--train-max-depth", type=positive_int,
                    help="dyck: split by depth instead: train/val nest at most this deep, the generalization "
                         "split (deep.jsonl) deeper")
    dm.set_defaults(func=cmd_data_make)


COMMANDS = {"data": add_data}
