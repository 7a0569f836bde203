"""`lmscope grok train|sweep|plot`: structural grokking, small transformers trained for long while
generalization and tree-structuredness are tracked."""

from __future__ import annotations

import re
from pathlib import Path

from lmscope.cli._lists import MAX_RANGE, int_list
from lmscope.cli._numbers import positive_int
from lmscope.cli._output import add_force, check_out, command_line, emit
from lmscope.cli._settings import add_settings
from lmscope.errors import LmscopeError
from lmscope.grokking.run import SWEEP_OPTIONS, GrokConfig


def cmd_grok_train(args) -> None:
    from lmscope.grokking import grok_train

    if not args.out:
        raise LmscopeError("give --out RUN, the run folder (an existing one is resumed)")
    check_out(args, kind="run", run_markers=("run.json",))
    res = grok_train(args.task, args.out, GrokConfig.from_args(args), quiet=args.quiet or args.json,
                     device=args.device)
    last = res.get("last_metrics") or {}
    lines = [f"trained {res['task']} ({res['layers']} layers) to step {res['step']} in {res['run_dir']}"]
    for key in ("id_acc", "gen_acc", "t_score"):
        if isinstance(last.get(key), (int, float)):
            lines.append(f"{key}: {last[key]:.4f}")
    emit(args, res, lines)


SEEDS_HELP = ("--seeds takes a list of seeds such as 0,1,2 or 0-2 (one seed: 3-3); "
              "for the first N seeds (0..N-1) use --n-seeds N")


def sweep_seeds(seeds: str | None, n_seeds: str | int | None) -> list[int]:
    """The seeds of a sweep from ``--seeds LIST`` (``0,1,2``, ``0-2``, one seed as ``3-3``) or
    ``--n-seeds N`` (seeds 0..N-1); neither: seed 0. A bare number for ``--seeds`` is refused (it could
    mean that seed or that many seeds), as is giving both."""
    if seeds is not None and n_seeds is not None:
        raise LmscopeError(f"give --seeds LIST or --n-seeds N, not both ({SEEDS_HELP})")
    if seeds is not None:
        if re.fullmatch(r"\s*[-+]?\d+\s*", str(seeds)):
            raise LmscopeError(f"{SEEDS_HELP}; got --seeds {seeds.strip()}")
        return int_list(seeds, "--seeds")
    if n_seeds is None:
        return [0]
    text = str(n_seeds).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_RANGE:
        raise LmscopeError(f"--n-seeds must be an integer from 1 to {MAX_RANGE:,}, got {n_seeds!r}")
    return list(range(int(text)))


def cmd_grok_sweep(args) -> None:
    from lmscope.grokking import grok_sweep_jobs, load_run
    from lmscope.report.grokking import plot_runs
    from lmscope.train.sweep import check_ray_address, run_step, run_sweep

    check_ray_address(args.ray)  # before any run folder is made
    layers = int_list(args.layers, "--layers")
    seeds = sweep_seeds(args.seeds, args.n_seeds)
    options = {k: getattr(args, k) for k in SWEEP_OPTIONS}
    jobs = grok_sweep_jobs(args.task, args.out, layers, seeds, args.steps, **options)
    from lmscope.train.sweep import SWEEP_FILE

    # an existing sweep folder is resumed when it holds this sweep's files only (or its sweep.json)
    own = {SWEEP_FILE, "plots", *(j.name for j in jobs), *(f"{j.name}.log" for j in jobs)}
    check_out(args, kind="run", own=own, run_markers=(SWEEP_FILE,))
    res = run_sweep(jobs, args.out, workers=args.jobs, threads=args.threads, ray=args.ray,
                    quiet=args.quiet or args.json)
    lines = [f"sweep of {len(jobs)} runs ({res['backend']}) in {res['root']}"]
    have = []
    for job in jobs:
        row = {}
        try:
            run = load_run(job.run_dir)
            row = run["rows"][-1]
            have.append(job.run_dir)
        except LmscopeError:
            pass
        cells = [f"{k} {row[k]:.3f}" for k in ("id_acc", "gen_acc", "t_score")
                 if isinstance(row.get(k), (int, float))]
        state = job.status + (f": {job.error}" if job.error else "")
        lines.append(f"  {job.name}: step {run_step(job.run_dir)}  {'  '.join(cells)}  [{state}]")
    if have and not args.no_plot:
        plots = plot_runs(have, Path(args.out) / "plots", force=True)  # the sweep's own plots folder
        res["plots"] = plots["out"]
        lines.append(f"plots: {Path(plots['out']) / 'index.html'}")
    emit(args, res, lines)
    if res["failed"]:
        raise LmscopeError(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])} (see their logs "
                           f"in {args.out}; starting the sweep again resumes every run)")


def cmd_grok_plot(args) -> None:
    from lmscope.report.grokking import plot_runs

    check_out(args)
    res = plot_runs(args.runs, args.out, force=args.force, command=command_line())
    emit(args, res, [f"wrote {len(res['files'])} files to {res['out']}"])


def _config_options(p, skip: tuple[str, ...] = (), sweep: bool = False) -> None:
    """The options of grok train and grok sweep made from the GrokConfig fields (name, type, default, help)."""
    add_settings(p, GrokConfig, skip, sweep)


def add_grok(sub, common) -> None:
    gk = sub.add_parser("grok", help="structural grokking: train small transformers for long, track "
                                     "generalization and tree-structuredness")
    gsub = gk.add_subparsers(dest="grok_command", metavar="ACTION", required=True)
    gt = gsub.add_parser("train", parents=[common], help="train (or resume) a run on a synthetic suite",
                         description="Train a causal post-LN transformer with sinusoidal positions on a suite's "
                                     "train split, logging in-distribution (val) and generalization (gen / ood) "
                                     "accuracy, t-score and F1, weight norm and attention entropy to "
                                     "RUN/metrics.jsonl every --eval-every steps. Starting again in RUN resumes.")
    gt.add_argument("--task", required=True, help="question-formation, tense-inflection or dyck")
    gt.add_argument("--out", help="the run folder (required)")
    _config_options(gt)
    gt.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto; not part of the run's "
                                                     "configuration (a run may resume on another device)")
    gt.set_defaults(func=cmd_grok_train)
    gw = gsub.add_parser("sweep", parents=[common], help="train many runs: depths x seeds, as local processes or on Ray",
                         description="Train (or resume) one grok train run per depth and seed, in "
                                     "OUT/<task>-l<layers>-s<seed> with its log OUT/<name>.log, then plot them "
                                     "in OUT/plots. Runs go to parallel local processes (default: one per core, "
                                     "one thread each) or, with --ray ADDRESS|auto|local, to Ray tasks; workers "
                                     "must see OUT at the same path. Starting the same sweep again resumes "
                                     "every run; a larger --steps extends them.")
    gw.add_argument("--task", required=True, help="question-formation, tense-inflection or dyck")
    gw.add_argument("--out", required=True, help="the sweep folder (existing runs in it are resumed)")
    gw.add_argument("--layers", required=True, help="depths, comma-separated (e.g. 2,4,6,8)")
    gw.add_argument("--seeds", metavar="LIST", help="the seeds, a list such as 0,1,2 or 0-2 (one seed: 3-3); "
                                                    "a bare number is refused, use --n-seeds for a count")
    gw.add_argument("--n-seeds", metavar="N", help="seeds 0..N-1 (default: seed 0 only); not with --seeds")
    _config_options(gw, skip=("layers", "seed"), sweep=True)
    gw.add_argument("--jobs", type=positive_int, help="runs at a time (default: one per core; with --ray: as the cluster allows)")
    gw.add_argument("--threads", type=positive_int, help="threads per run (default: cores // jobs locally, 1 on Ray)")
    gw.add_argument("--ray", metavar="ADDRESS",
                    help="run on Ray: 'auto' (the cluster of this machine), HOST:PORT or ray://HOST:PORT, or "
                         "'local' (a private instance on this machine); needs pip install ray")
    gw.add_argument("--no-plot", action="store_true", help="do not write OUT/plots")
    gw.add_argument("--force", action="store_true", help="use an existing --out folder that holds other files "
                                                         "(nothing in it is deleted)")
    gw.set_defaults(func=cmd_grok_sweep)
    gp = gsub.add_parser("plot", parents=[common], help="plot runs: accuracy and t-score vs steps, and vs depth",
                         description="Write accuracy.png (id and gen accuracy vs steps, log x axis), "
                                     "t_score.png, depth.png (when the runs differ in depth: final gen "
                                     "accuracy and t-score vs layers) and index.html.")
    gp.add_argument("runs", nargs="+", help="run folders of lmscope grok train")
    gp.add_argument("--out", required=True, help="folder for the PNGs and index.html")
    add_force(gp)
    gp.set_defaults(func=cmd_grok_plot)


COMMANDS = {"grok": add_grok}
