"""`lmscope spectrum`, `lmscope intruders` and `lmscope laser apply|search`: weight spectra, intruder
dimensions of a fine-tune, and layer-selective rank reduction."""

from __future__ import annotations

import json
from pathlib import Path

from lmscope.cli._help import MODEL_HELP, TASK_HELP
from lmscope.cli._lists import float_list, int_list, name_list
from lmscope.cli._numbers import (
    fraction,
    non_negative_int,
    number,
    positive_int,
    probability,
    seed,
)
from lmscope.cli._output import add_force, check_out, command_line, emit, logger, write_report
from lmscope.errors import LmscopeError


def cmd_spectrum(args) -> None:
    from lmscope.spectral import METRICS, SVDCache, analyze_spectrum

    if args.metric not in METRICS:
        raise LmscopeError(f"unknown metric {args.metric!r}; choose one of {', '.join(METRICS)}")
    check_out(args)
    res = analyze_spectrum(args.model, roles=name_list(args.roles, "--roles"),
                           layers=int_list(args.layers, "--layers"),
                           cache=SVDCache(enabled=not args.no_cache), quiet=args.quiet)
    if args.out:  # plotting libraries are imported only when a report is asked for
        from lmscope.report.sections import spectrum_section

        write_report(args.out, f"Spectrum: {res.model}", lambda rep: spectrum_section(rep, res, metric=args.metric),
                     args=args)
    cols = ["key", "rows", "cols", "rank", "stable_rank", "effective_rank", "alpha", "alpha_weighted", "spectral_norm"]
    lines = [res.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"), "",
             json.dumps(res.summary())]
    if args.out:
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    emit(args, res.to_dict() | {"summary": res.summary()}, lines)


def cmd_intruders(args) -> None:
    from lmscope.spectral import SVDCache, find_intruders, mitigate_intruders
    from lmscope.spectral.intruders import check_k_eps

    check_k_eps(args.k, args.eps)
    if args.checkpoints:
        return _intruders_over_training(args)
    if args.scale is not None and not (0.0 <= args.scale <= 1.0):
        raise LmscopeError(f"--scale must be in [0, 1], got {args.scale}")
    if args.scale is not None and not args.out:
        raise LmscopeError("--scale needs --out DIR for the mitigated checkpoint")
    if args.report is not None and args.scale is None:
        raise LmscopeError("--report names the report folder when --out is the mitigated checkpoint (with "
                           "--scale); without --scale the report goes to --out")
    check_out(args)  # every output checked before any work, so a refusal leaves nothing written
    check_out(args, "report")
    if args.out and args.report:
        from lmscope.outputs import overlap

        if overlap(args.out, args.report):
            raise LmscopeError(f"--report {args.report} and --out {args.out} overlap; give two separate folders")
    res = find_intruders(args.base, args.tuned, k=args.k, eps=args.eps, roles=name_list(args.roles, "--roles"),
                         layers=int_list(args.layers, "--layers"), cache=SVDCache(enabled=not args.no_cache),
                         quiet=args.quiet)
    if args.matrix and args.matrix not in res.similarity:
        raise LmscopeError(f"no matrix {args.matrix!r}; use a key such as {res.table['key'].iloc[0]!r}")
    lines = [res.table[["key", "n_intruders", "min_max_cos"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"),
             "", "per layer: " + ", ".join(f"{int(a)}:{int(b)}" for a, b in res.by_layer().itertuples(index=False)),
             "per role:  " + ", ".join(f"{a}:{int(b)}" for a, b in res.by_role().itertuples(index=False)),
             f"total intruders: {res.total} in {int((res.table['n_intruders'] > 0).sum())} of {len(res.table)} matrices"]
    payload = res.to_dict()
    if args.scale is not None:
        path = mitigate_intruders(res, args.out, scale=args.scale, quiet=args.quiet, force=args.force)
        lines.append(f"mitigated checkpoint (intruders x {args.scale}): {path}")
        payload["mitigated_checkpoint"] = str(path)
    report_dir = args.report if args.scale is not None else args.out
    if report_dir:
        from lmscope.report.sections import intruder_section

        write_report(report_dir, f"Intruders: {res.tuned} vs {res.base}",
                     lambda rep: intruder_section(rep, res, matrix=args.matrix), args=args,
                     what="--report" if args.scale is not None else "--out")
        lines.append(f"report: {Path(report_dir) / 'index.html'}")
    emit(args, payload, lines)


def _intruders_over_training(args) -> None:
    from lmscope.spectral import SVDCache
    from lmscope.spectral.intruders import intruders_over_training

    other = [o for o, v in (("--scale", args.scale), ("--out", args.out), ("--report", args.report),
                            ("--matrix", args.matrix)) if v is not None]
    if other:
        raise LmscopeError(f"--checkpoints counts intruders over training only; it does not take {other[0]}")
    table = intruders_over_training(args.base, args.tuned, k=args.k, eps=args.eps,
                                    roles=name_list(args.roles, "--roles"), layers=int_list(args.layers, "--layers"),
                                    cache=SVDCache(enabled=not args.no_cache), quiet=args.quiet)
    shown = table.drop(columns=["max_cos"])
    lines = [shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    if len(table) == 1:
        lines.append(f"(no kept checkpoints in {args.tuned}: only its last step; fine-tune with --keep-checkpoints)")
    emit(args, {"base": args.base, "tuned": args.tuned, "k": args.k, "eps": args.eps,
                "steps": table.to_dict(orient="records")}, lines)


def cmd_laser_apply(args) -> None:
    from lmscope.spectral.laser import Reduction, apply_laser, keep_from_rate

    reductions = [Reduction.parse(t) for t in args.reduce or []]
    if args.layer is not None or args.role is not None or args.keep is not None or args.rate is not None:
        if args.layer is None or args.role is None or (args.keep is None) == (args.rate is None):
            raise LmscopeError("give --layer, --role and one of --keep or --rate together")
        keep = args.keep if args.keep is not None else keep_from_rate(args.rate)
        reductions.append(Reduction(args.layer, args.role, keep))
    check_out(args)
    res = apply_laser(args.model, reductions, args.out, quiet=args.quiet, factored=args.factored, force=args.force)
    lines = [f"  layer {r['layer']} {r['role']}: {r['shape'][0]}x{r['shape'][1]} -> rank {r['rank']} "
             f"(keep {r['keep']:g}), stored {r['stored']}" + (f" ({r['why_dense']})" if "why_dense" in r else "")
             for r in res["reductions"]]
    before, after = res["parameters_before"], res["parameters_after"]
    lines.append(f"parameters: {before:,} -> {after:,} ({100 * (after - before) / before:+.2f}%)")
    lines.append(f"wrote {res['out']}")
    emit(args, res, lines)


def cmd_laser_search(args) -> None:
    from lmscope.spectral.laser_search import DEFAULT_KEEPS, DEFAULT_ROLES, SearchConfig, laser_search

    if args.grid == "paper" and (args.layers or args.keeps or args.roles):
        raise LmscopeError("--grid paper fixes the layers, roles and keeps; leave out --layers, --roles and --keeps")
    cfg = SearchConfig(grid=args.grid, scoring=args.scoring, layers=int_list(args.layers, "--layers"),
                       roles=tuple(name_list(args.roles, "--roles") or DEFAULT_ROLES),
                       keeps=tuple(float_list(args.keeps, "--keeps") or DEFAULT_KEEPS), val_fraction=args.val_fraction,
                       seed=args.seed, limit=args.limit, batch_size=args.batch_size, top_k=args.top_k,
                       compose=not args.no_compose, device=args.device, resume=not args.no_resume)
    check_out(args)
    res = laser_search(args.model, args.task, cfg, quiet=args.quiet, log=logger(args))
    lines = res.summary_lines()
    t = res.timing
    if t.get("configs_per_second"):
        lines.append(f"  {t['scored_now']} configs scored in {t['seconds']:.1f} s ({t['configs_per_second']:.2f}/s)")
    if args.out:
        from lmscope.report.sections import laser_section

        _laser_report(args, f"LASER search: {res.model}", laser_section, res, lines)
    emit(args, res.to_dict(), lines)


def cmd_laser_study(args) -> None:
    from lmscope.spectral.laser_search import DEFAULT_ROLES, PAPER_KEEPS
    from lmscope.spectral.laser_study import StudyConfig, laser_study

    layers = int_list(args.layers, "--layers")
    cfg = StudyConfig(layers=tuple(layers) if layers else None,
                      roles=tuple(name_list(args.roles, "--roles") or DEFAULT_ROLES),
                      keeps=tuple(float_list(args.keeps, "--keeps") or PAPER_KEEPS), scoring=args.scoring,
                      resplits=args.resplits, val_fraction=args.val_fraction, seed=args.seed, n_boot=args.n_boot,
                      batch_size=args.batch_size, device=args.device)
    check_out(args)
    res = laser_study(args.model, args.task, cfg, quiet=args.quiet, log=logger(args))
    lines = res.summary_lines()
    if args.out:
        from lmscope.report.sections import laser_study_section

        _laser_report(args, f"LASER study: {res.model}", laser_study_section, res, lines)
    emit(args, res.to_dict(), lines)


def _laser_report(args, title: str, section, res, lines: list[str]) -> None:
    """Write ``section(report, res, command=...)`` as the report in --out and name it in ``lines``."""
    cmd = command_line()
    write_report(args.out, title, lambda rep: section(rep, res, command=cmd), args=args)
    lines.append(f"report: {Path(args.out) / 'index.html'}")


def add_spectrum(sub, common) -> None:
    s = sub.add_parser("spectrum", parents=[common], help="singular values and spectrum metrics of every matrix",
                       description="Per matrix: rank, stable rank, effective rank, spectral entropy, norms, "
                                   "power-law alpha (KS-chosen xmin), alpha_weighted, Marchenko-Pastur spikes.")
    s.add_argument("model", help=MODEL_HELP)
    s.add_argument("--roles", help="comma-separated roles")
    s.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    s.add_argument("--metric", default="alpha", help="metric of the layer x role heatmap (default alpha)")
    s.add_argument("--out", help="report folder: CSV, JSON, plots, index.html")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the SVD cache")
    add_force(s)
    s.set_defaults(func=cmd_spectrum)


def add_intruders(sub, common) -> None:
    i = sub.add_parser("intruders", parents=[common], help="intruder dimensions of a fine-tuned model vs its base",
                       description="Count, per matrix, the top-k left singular vectors of TUNED whose largest "
                                   "|cosine| with any singular vector of BASE is below eps. With --scale, write a "
                                   "new checkpoint to --out with every intruder's singular value multiplied.")
    i.add_argument("base", help=MODEL_HELP)
    i.add_argument("tuned", help=MODEL_HELP)
    i.add_argument("--k", type=positive_int, default=10, help="top-k singular vectors of the tuned matrix (default 10)")
    i.add_argument("--eps", type=probability, default=0.5, help="similarity threshold (default 0.5)")
    i.add_argument("--roles", help="comma-separated roles")
    i.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    i.add_argument("--matrix", help="matrix key for the similarity figure (default: the one with most intruders)")
    i.add_argument("--scale", type=number(0.0, 1.0), help="mitigation: multiply intruders' singular values by this (e.g. 0.75)")
    i.add_argument("--out", help="report folder; with --scale, the mitigated checkpoint's folder")
    i.add_argument("--report", help="report folder when --out is the mitigated checkpoint")
    i.add_argument("--checkpoints", action="store_true",
                   help="count at every checkpoint TUNED kept (`lmscope finetune --keep-checkpoints`) and at its end")
    i.add_argument("--no-cache", action="store_true", help="do not read or write the SVD cache")
    add_force(i)
    i.set_defaults(func=cmd_intruders)


def add_laser(sub, common) -> None:
    la = sub.add_parser("laser", help="LASER: layer-selective rank reduction")
    lsub = la.add_subparsers(dest="laser_command", metavar="ACTION", required=True)
    lap = lsub.add_parser("apply", parents=[common], help="replace matrices by low-rank approximations",
                          description="Replace a matrix (by layer and role) with its best rank-k approximation, "
                                      "k = floor(keep * min(m, n)), and write a new checkpoint. The paper's rate r "
                                      "maps to keep = 1 - 0.1 r (rate 9.9 = keep 0.01).")
    lap.add_argument("model", help=MODEL_HELP)
    lap.add_argument("--layer", type=non_negative_int)
    lap.add_argument("--role", help="q, k, v, o, fc_in (gate), up, fc_out (down)")
    lap.add_argument("--keep", type=probability, help="kept fraction of the rank, in (0, 1]")
    lap.add_argument("--rate", type=number(0.0, below=10.0), help="the paper's rate (0-10) instead of --keep")
    lap.add_argument("--reduce", action="append", metavar="LAYER:ROLE:KEEP",
                     help="another reduction (repeatable), e.g. --reduce 27:fc_in:0.01")
    lap.add_argument("--out", required=True, help="folder of the new checkpoint")
    lap.add_argument("--factored", action="store_true",
                     help="store each reduced matrix as two thin factors (a low-rank module), so the checkpoint "
                          "and the loaded model shrink; load it with lmscope (see the README)")
    add_force(lap)
    lap.set_defaults(func=cmd_laser_apply)

    las = lsub.add_parser("search", parents=[common], help="search layers x roles x keep on an evaluation task",
                          description="Score every (layer, role, keep) on a seeded validation split, pick the best "
                                      "by validation accuracy (ties: lower log-loss), report it on the test split "
                                      "against the unmodified model, and compose reductions greedily. "
                                      "Interrupted searches resume where they stopped.")
    las.add_argument("model", help=MODEL_HELP)
    las.add_argument("--task", required=True, help=TASK_HELP)
    las.add_argument("--layers", help="layers to search, e.g. 20-29 (default: all)")
    las.add_argument("--roles", help="roles to search (default: fc_in,fc_out, the paper's MLP matrices)")
    las.add_argument("--keeps", help="kept fractions (default: 0.9,0.8,0.6,0.4,0.2,0.1,0.05,0.01,0.005)")
    las.add_argument("--val-fraction", type=fraction, default=0.2, help="validation share of the examples (default 0.2)")
    las.add_argument("--seed", type=seed, default=0, help="seed of the validation/test split (default 0)")
    las.add_argument("--limit", type=positive_int, help="use a seeded sample of this many examples")
    las.add_argument("--batch-size", type=positive_int, default=32)
    las.add_argument("--top-k", type=positive_int, default=5, help="k of the top-k metric (default 5)")
    las.add_argument("--grid", choices=["full", "paper"], default="full",
                     help="full: --layers x --roles x --keeps (default); paper: the pre-registered grid in the "
                          "paper's regime (last 5 layers, fc_in and fc_out, keep 0.1, 0.05, 0.01)")
    las.add_argument("--scoring", choices=["first-token", "single-token"], default="first-token",
                     help="first-token: every example, judged by the answer's first token (default); "
                          "single-token: only examples whose answer is one token of the model's tokenizer, as "
                          "the paper scores CounterFact")
    las.add_argument("--no-compose", action="store_true", help="skip the greedy composition")
    las.add_argument("--no-resume", action="store_true", help="rescore every config even if a previous run did")
    las.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N")
    las.add_argument("--out", help="report folder: table of every config, heatmaps, per-example test metrics")
    add_force(las)
    las.set_defaults(func=cmd_laser_search)

    lst = lsub.add_parser("study", parents=[common], help="a grid scored once, R random resplits, bootstrap intervals",
                          description="Score every config of a grid (default: the pre-registered one in the "
                                      "paper's regime, last 5 layers x fc_in, fc_out x keep 0.1, 0.05, 0.01) on "
                                      "every example once; then for each of R seeded validation/test resplits "
                                      "choose the config with the best validation accuracy and report its test "
                                      "accuracy minus the unmodified model's with a paired bootstrap 95% interval "
                                      "over the test examples, and how many of the examples the unmodified model "
                                      "gets wrong it fixes (and right ones it breaks).")
    lst.add_argument("model", help=MODEL_HELP)
    lst.add_argument("--task", required=True, help=TASK_HELP + " (a recall task)")
    lst.add_argument("--layers", help="layers of the grid, e.g. 25-29 (default: the last 5)")
    lst.add_argument("--roles", help="roles of the grid (default: fc_in,fc_out)")
    lst.add_argument("--keeps", help="kept fractions (default: 0.1,0.05,0.01)")
    lst.add_argument("--scoring", choices=["first-token", "single-token"], default="single-token",
                     help="single-token (default): only examples whose answer is one token of the model's "
                          "tokenizer; first-token: every example, judged by the answer's first token")
    lst.add_argument("--resplits", type=positive_int, default=10, help="random validation/test resplits (default 10)")
    lst.add_argument("--val-fraction", type=fraction, default=0.2, help="validation share (default 0.2)")
    lst.add_argument("--seed", type=seed, default=0,
                     help="resplit r shuffles with seed SEED + r; the bootstraps are seeded from it (default 0)")
    lst.add_argument("--n-boot", type=positive_int, default=2000, help="bootstrap resamples (default 2000)")
    lst.add_argument("--batch-size", type=positive_int, default=32)
    lst.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N")
    lst.add_argument("--out", help="report folder: the grid and resplit tables (CSV), JSON, index.html")
    add_force(lst)
    lst.set_defaults(func=cmd_laser_study)


COMMANDS = {"spectrum": add_spectrum, "intruders": add_intruders, "laser": add_laser}
