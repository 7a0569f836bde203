"""`lmscope pushdown train|eval|parse`: language models with pushdown layers (a stack tape read by
attention, and an attachment head that parses while the model reads)."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._numbers import positive_int, seed
from lmscope.cli._output import add_force, check_out, emit, write_report
from lmscope.cli._settings import add_settings
from lmscope.errors import LmscopeError
from lmscope.pushdown.run import TASKS, PushdownRunConfig

PICTURES = 4  # parse pictures in an eval report


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise LmscopeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def cmd_train(args) -> None:
    from lmscope._io import check_input_file
    from lmscope.pushdown.run import pushdown_train

    if (args.task is None) == (args.trees is None):
        raise LmscopeError("give --task TASK or --trees FILE (one of them)")
    _check_task(args.task)
    if args.trees is not None:
        check_input_file(args.trees, "tree file")
    config = PushdownRunConfig.from_args(args)
    check_out(args, kind="run", run_markers=("run.json",))
    res = pushdown_train(args.task, args.out, config, trees_file=args.trees, quiet=args.quiet or args.json,
                         device=args.device)
    last = res.get("last_metrics") or {}
    kind = "plain relative-position" if config.pushdown_layers == "none" else \
        f"pushdown layers {config.pushdown_layers}"
    lines = [f"trained {res['task']} ({res['layers']} layers, {kind}) to step {res['step']} in {res['run_dir']}"]
    for key in ("val_loss", "val_ppl", "id_acc", "gen_acc", "f1", "test_id_acc", "test_gen_acc"):
        if isinstance(last.get(key), (int, float)):
            lines.append(f"{key}: {last[key]:.4f}")
    emit(args, res, lines)


def _eval_report(res, args):
    """The report folder's contents: metrics.json, a few parse pictures, index.html."""
    from lmscope._io import write_json
    from lmscope.report.plots import plot_tree

    def fill(rep) -> None:
        write_json(rep.out / "metrics.json", res.to_dict())
        rep.heading("Summary")
        rep.kv({k: v for k, v in res.summary().items() if not isinstance(v, dict)})
        for key in ("task_accuracy", "baseline_f1"):
            if res.summary()[key]:
                rep.heading(key.replace("_", " "), 3)
                rep.kv(res.summary()[key])
        rep.link(rep.out / "metrics.json", "metrics.json (every figure and every parse)")
        if res.parses:
            rep.heading("Parses (green: brackets also in the gold tree; red: not)")
            for i, (words, tree, gold) in enumerate(res.parses[:PICTURES]):
                png = plot_tree(tree, rep.out / f"parse-{i}.png", title=" ".join(words)[:90], gold=gold)
                rep.image(png, f"best beam-{res.beam} parse of sentence {i}")

    return fill


def cmd_eval(args) -> None:
    from lmscope._io import check_input_file
    from lmscope.pushdown.evaluate import load_run, pushdown_eval

    if args.data is not None and args.task is not None:
        raise LmscopeError("give --data FILE or --task TASK, not both")
    _check_task(args.task)
    if args.data is not None:
        check_input_file(args.data, "data file")
    check_out(args)
    if args.task is not None:
        trained = load_run(args.run).task
        if trained != args.task:
            raise LmscopeError(f"{args.run} was trained on {trained}, not {args.task}; give --data FILE for "
                               "other rows")
    res = pushdown_eval(args.run, data=args.data, beam=args.beam, limit=args.limit, seed=args.seed,
                        quiet=args.quiet or args.json, device=args.device)
    lines = res.lines()
    if args.out:
        write_report(args.out, f"Pushdown evaluation: {args.run}", _eval_report(res, args), args=args)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    emit(args, res.to_dict(), lines)


def cmd_parse(args) -> None:
    from lmscope.data.trees import to_bracketed
    from lmscope.pushdown.evaluate import pushdown_parse

    check_out(args)
    res = pushdown_parse(args.run, args.sentence, beam=args.beam)
    lines = [to_bracketed(res.tree),
             f"log p(words, parse) = {res.log_prob:.4f}; beam-{res.beam} log-likelihood (a lower bound) = "
             f"{res.log_likelihood:.4f}"]
    if args.out:
        from lmscope.report.plots import plot_tree

        def fill(rep) -> None:
            rep.code(to_bracketed(res.tree))
            rep.image(plot_tree(res.tree, rep.out / "parse.png", title=" ".join(res.words)[:90]),
                      f"best beam-{res.beam} parse, log p = {res.log_prob:.4f}")

        write_report(args.out, "Pushdown parse", fill, args=args)
        lines.append(f"picture: {Path(args.out) / 'parse.png'}")
    emit(args, res.to_dict(), lines)


def add_pushdown(sub, common) -> None:
    pd = sub.add_parser("pushdown", help="pushdown layers: LMs that read a stack tape and parse while they read")
    psub = pd.add_subparsers(dest="pushdown_command", metavar="ACTION", required=True)
    pt = psub.add_parser("train", parents=[common], help="train (or resume) a pushdown run",
                         description="Train a relative-position transformer whose pushdown layers read the "
                                     "stack tape, with an attachment head, on a suite's whole lines (gold trees "
                                     "give the tapes) or on a bracketed tree file (one tree per line; a seeded "
                                     "tenth is held out). Every --eval-every steps RUN/metrics.jsonl gets the "
                                     "held-out LM loss and perplexity (teacher-forced, gold tapes), task "
                                     "accuracy on val and the generalization split with the model's own "
                                     "attachments, and the parse F1 of greedy parses. Starting again in RUN "
                                     "resumes; another configuration there is refused.")
    pt.add_argument("--task", help=f"a suite: {', '.join(TASKS)}")
    pt.add_argument("--trees", metavar="FILE", help="a file of bracketed trees, one per line, instead of --task")
    pt.add_argument("--out", required=True, help="the run folder (an existing one is resumed)")
    add_settings(pt, PushdownRunConfig)
    pt.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto; not part of the run's "
                                                     "configuration (a run may resume on another device)")
    pt.set_defaults(func=cmd_train)
    pe = psub.add_parser("eval", parents=[common], help="perplexity, task accuracy and parse F1 of a run",
                         description="Evaluate a run's newest checkpoint on its held-out test rows (default, or "
                                     "--task with the run's task) or on --data rows: perplexity from beam search "
                                     "(an upper bound: the beam's log-likelihood is a lower bound; exact for the "
                                     "plain model), task accuracy with the model's own attachments, and the "
                                     "parse F1 of the best beam parses against the gold trees beside left-, "
                                     "right-branching, balanced and random trees.")
    pe.add_argument("run", help="a run folder of lmscope pushdown train")
    pe.add_argument("--data", metavar="FILE", help="JSONL rows {text, target?, tree?, split?} (lmscope data make)")
    pe.add_argument("--task", help="the run's task: its own held-out rows (the default)")
    pe.add_argument("--beam", type=positive_int, default=8, help="beam width (default 8; 1 = greedy)")
    pe.add_argument("--limit", type=positive_int, default=200, help="rows per split (default 200)")
    pe.add_argument("--seed", type=seed, default=0, help="seed of the random baseline trees (default 0)")
    pe.add_argument("--out", help="a report folder: metrics.json, parse pictures, index.html")
    pe.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    add_force(pe)
    pe.set_defaults(func=cmd_eval)
    pp = psub.add_parser("parse", parents=[common], help="parse a sentence with a run's model",
                         description="The best parse of the sentence by beam search over attachments, in "
                                     "brackets, with its joint log-probability; a picture with --out.")
    pp.add_argument("run", help="a run folder of lmscope pushdown train")
    pp.add_argument("sentence", help="the words, separated by spaces")
    pp.add_argument("--beam", type=positive_int, default=8, help="beam width (default 8; 1 = greedy)")
    pp.add_argument("--out", help="a folder for the picture (parse.png, index.html)")
    add_force(pp)
    pp.set_defaults(func=cmd_parse)


COMMANDS = {"pushdown": add_pushdown}
