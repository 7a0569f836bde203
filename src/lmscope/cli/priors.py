"""`lmscope priors list|run|query`: language models as priors in graphical models (LaMPP)."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._numbers import positive_number, seed
from lmscope.cli._output import add_force, check_out, command_line, emit, write_report
from lmscope.cli.lm import add_lm_arguments, lm_from_args, log_cache
from lmscope.errors import LmscopeError


def cmd_priors_list(args) -> None:
    from lmscope.priors import BENCHMARKS, METHODS

    rows = [{"name": b.name, "description": b.description} for b in BENCHMARKS.values()]
    emit(args, {"benchmarks": rows, "methods": list(METHODS), "sizes": ["small", "default"]},
         [f"{r['name']:10s} {r['description']}" for r in rows] + ["", "methods: " + ", ".join(METHODS)])


def cmd_priors_run(args) -> None:
    from lmscope.priors import BENCHMARKS, PriorsConfig, run_benchmark

    config = PriorsConfig(query=args.query, temperature=args.temperature)
    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    if names[0] not in BENCHMARKS:
        raise LmscopeError(f"unknown benchmark {args.benchmark!r}; choose one of {', '.join(BENCHMARKS)} or all")
    check_out(args)
    lm = None if args.no_lm else lm_from_args(args)
    try:
        results = [run_benchmark(n, lm, seed=args.seed, size=args.size, config=config) for n in names]
        if lm is not None:
            log_cache(args, lm)
    finally:
        if lm is not None:
            lm.close()
    lines = []
    for r in results:
        lines += r.summary_lines() + [""]
    if args.out:
        from lmscope.report.sections import priors_section

        cmd = command_line()

        def fill(rep):
            for r in results:
                priors_section(rep, r, command=cmd)

        write_report(args.out, "LM priors (LaMPP)", fill, args=args)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    payload = results[0].to_dict() if len(results) == 1 else {"results": [r.to_dict() for r in results]}
    emit(args, payload, lines)


def cmd_priors_query(args) -> None:
    from lmscope.priors import query_priors, read_queries

    queries = read_queries(args.config)
    check_out(args)
    lm = lm_from_args(args)
    try:
        tables = query_priors(lm, queries)
        log_cache(args, lm)
    finally:
        lm.close()
    lines = []
    for t in tables:
        lines.append(f"{t.name} ({' x '.join(t.axes)}):")
        if t.values.ndim == 2:
            df = t.to_frame().pivot(index=t.axes[0], columns=t.axes[1], values="p")
            df = df.reindex(index=list(t.labels[0]), columns=list(t.labels[1]))
            lines.append(df.to_string(float_format=lambda v: f"{v:.3f}"))
        else:
            lines.append(t.to_frame().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        lines.append("")
    if args.out:
        from lmscope.report.sections import prior_table_section

        def fill(rep):
            for t in tables:
                rep.heading(t.name)
                prior_table_section(rep, t, "".join(c if c.isalnum() or c in "-_" else "_" for c in t.name))

        write_report(args.out, "LM prior tables", fill, args=args)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    emit(args, {"tables": [t.to_dict() for t in tables]}, lines)


def add_priors(sub, common) -> None:
    pr = sub.add_parser("priors", help="LM priors (LaMPP): language models as priors in graphical models")
    psub = pr.add_subparsers(dest="priors_command", metavar="ACTION", required=True)
    pl = psub.add_parser("list", parents=[common], help="the benchmarks and the methods they compare")
    pl.set_defaults(func=cmd_priors_list)
    prun = psub.add_parser("run", parents=[common], help="run a benchmark: no prior, uniform, LM prior, chaining",
                           description="Generate a benchmark (seeded), ask the language model for its prior tables "
                                       "(one batch of scoring requests), and compare no prior, a uniform prior, the "
                                       "LM prior, model chaining and the true prior, overall and on the rare or "
                                       "out-of-distribution slices.")
    prun.add_argument("benchmark", help="labels, actions, search, or all (see `lmscope priors list`)")
    prun.add_argument("--no-lm", action="store_true", help="no language model: only the rows that need none")
    prun.add_argument("--seed", type=seed, default=0, help="seed of the generated benchmark (default 0)")
    prun.add_argument("--size", default="default", choices=["small", "default"],
                      help="benchmark size (default: default, about a minute with SmolLM2-135M on 2 CPU cores)")
    prun.add_argument("--query", default="reference", choices=["reference", "next-token"],
                      help="how the model is asked: reference (default; binary plausible/implausible questions for "
                           "labels, the reference's action prompts) or next-token (the older prompts, calibrated)")
    prun.add_argument("--temperature", type=positive_number, default=9.0,
                      help="classifier temperature of label correction (default 9, the reference's; the rows "
                           "'(T from validation)' choose it from 1, 2, 4, 8, 16 on validation scenes)")
    prun.add_argument("--out", help="report folder: tables (CSV, JSON), prior tables, plots, index.html")
    add_force(prun)
    add_lm_arguments(prun)
    prun.set_defaults(func=cmd_priors_run)
    pq = psub.add_parser("query", parents=[common], help="ask the language model for prior tables from a JSON config",
                         description="CONFIG is a JSON object (or a list of them) with name, template (named "
                                     "fields such as {room}), inputs (field -> values), classes, and optionally "
                                     "examples (field values plus answer), positive (binary: keep p(positive)), "
                                     "instruction. Each class is scored after the filled template and softmaxed "
                                     "over the classes.")
    pq.add_argument("config", help="JSON file of prior queries")
    pq.add_argument("--out", help="folder: each table as JSON and CSV, heatmaps, index.html")
    add_force(pq)
    add_lm_arguments(pq)
    pq.set_defaults(func=cmd_priors_query)


COMMANDS = {"priors": add_priors}
