"""`lmscope eval MODEL --task` (accuracy and log-loss on an evaluation set) and the pseudointelligence
game: `lmscope eval game|profile|list`."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._help import MODEL_HELP, TASK_HELP
from lmscope.cli._lists import int_list, name_list
from lmscope.cli._numbers import non_negative_int, positive_int, seed
from lmscope.cli._output import add_force, check_out, command_line, emit, logger
from lmscope.cli.lm import add_lm_arguments, lm_from_args, log_cache
from lmscope.errors import LmscopeError
from lmscope.outputs import MARKER

EVAL_SCHEMA_HELP = ("Task files: one JSON object per line, one kind per file: recall {prompt, answer, aliases?}; "
                    "choice {prompt, choices, answer}; text {text}.")
EVAL_ACTIONS = ("game", "profile", "list")


def prepare_argv(argv: list[str]) -> list[str]:
    """`eval game ...` runs the command eval-game (likewise profile, list); `eval MODEL --task` stays as it is."""
    if len(argv) >= 2 and argv[0] == "eval" and argv[1] in EVAL_ACTIONS:
        return [f"eval-{argv[1]}", *argv[2:]]
    return argv


def cmd_eval(args) -> None:
    from lmscope.lm.scoring import evaluate_model

    check_out(args)
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
        from lmscope._io import write_json, write_jsonl
        from lmscope.cli._output import command_inputs
        from lmscope.outputs import output_dir

        with output_dir(args.out, command_inputs(args), command=command_line() or "lmscope eval",
                        force=args.force) as tmp:
            write_json(tmp / "summary.json", payload)
            write_jsonl(tmp / "examples.jsonl", scores.rows(task))
        lines.append(f"per-example metrics: {Path(args.out) / 'examples.jsonl'}")
    emit(args, payload, lines)


def cmd_eval_list(args) -> None:
    from lmscope.evaluation import CAPABILITIES, EVALUATORS, ORACLES

    caps = {k: {"description": c.description, "kinds": list(c.kinds)} for k, c in CAPABILITIES.items()}
    evs = {k: e.description for k, e in EVALUATORS.items()}
    lines = ["capabilities:"] + [f"  {k:20s} {v['description']}" for k, v in caps.items()]
    lines += ["", "models (--model):"] + [f"  {k:20s} {v}" for k, v in ORACLES.items()]
    lines += ["", "evaluators (--evaluator):"] + [f"  {k:20s} {v}" for k, v in evs.items()]
    emit(args, {"capabilities": caps, "models": ORACLES, "evaluators": evs}, lines)


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

    # threshold None: the evaluator's own default; taxonomy and probe reach the adaptive evaluator only
    return make_evaluator(name, threshold=args.threshold, taxonomy=args.taxonomy, probe=not args.no_probe)


def _check_adaptive_options(args, names) -> None:
    if (args.taxonomy != "full" or args.no_probe) and "adaptive" not in names:
        raise LmscopeError(f"{'--no-probe' if args.no_probe else '--taxonomy'} changes the adaptive evaluator "
                           "only; add --evaluator adaptive")


def cmd_eval_game(args) -> None:
    from lmscope._io import write_json
    from lmscope.evaluation import get_capability, make_oracle, play_games, replay
    from lmscope.evaluation.profile import model_label

    if args.replay:
        if args.capability or args.model or args.evaluator:
            raise LmscopeError("--replay recomputes a game from its transcript alone; give it without "
                               "--capability, --model or --evaluator")
        res = replay(args.replay)
        emit(args, res.to_dict(), ["replayed from the transcript, without the model:"] + res.summary_lines())
        return
    missing = [f"--{k}" for k in ("capability", "model", "evaluator") if not getattr(args, k)]
    if missing:
        raise LmscopeError(f"give {', '.join(missing)} (or --replay TRANSCRIPT); `lmscope eval list` lists them")
    cap = get_capability(args.capability)
    _check_adaptive_options(args, [args.evaluator])
    evaluator = _evaluator(args, args.evaluator)
    resources = _resources(args)
    evaluator.check(cap, resources)
    own = ("transcript.jsonl", "summary.json", MARKER)
    check_out(args, kind="run", own=own)
    check_out(args, "transcript", kind="file")
    if args.transcript:
        transcript = Path(args.transcript)
    elif args.out:
        transcript = Path(args.out) / "transcript.jsonl"
    else:
        r = resources
        transcript = Path("lmscope-games") / (f"{cap.name}__{model_label(args.model)}__{evaluator.label}__"
                                              f"s{r.samples}-r{r.rounds}-q{r.queries_per_round}__seed{args.seed}.jsonl")
    factory, opened = _game_lms(args)
    try:
        judge = _judge_lm(args, [evaluator.name], opened)
        model = make_oracle(args.model, cap, lm_factory=factory)
        res = play_games(cap, model, evaluator, resources, args.games, seed=args.seed, transcript=transcript,
                         judge_lm=judge, on_error=args.on_error, quiet=args.quiet or args.json)
        for lm in opened:
            log_cache(args, lm)
    finally:
        for lm in opened:
            lm.close()
    payload = res.to_dict()
    lines = res.summary_lines()
    if args.out:
        payload.pop("games")
        write_json(Path(args.out) / "summary.json", payload)
        lines.append(f"summary: {Path(args.out) / 'summary.json'}")
    emit(args, payload, lines)
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
    check_out(args, kind="run", own=("transcripts", "profile.csv", "profile.json", "profile.png", "index.html",
                                     MARKER))
    resource = {"queries": "queries_per_round"}.get(args.vary, args.vary)
    values = int_list(args.values, "--values")
    _check_adaptive_options(args, names := [n for spec in args.evaluator for n in name_list(spec, "--evaluator")])
    evaluators = [_evaluator(args, name) for name in names]
    base = _resources(args)
    out = Path(args.out)
    factory, opened = _game_lms(args)
    try:
        judge = _judge_lm(args, [e.name for e in evaluators], opened)
        models = {spec: make_oracle(spec, cap, lm_factory=factory) for spec in dict.fromkeys(args.model)}
        res = profile(cap, models, evaluators, resource, values, base, args.games, seed=args.seed,
                      transcripts=out / "transcripts", judge_lm=judge, on_error=args.on_error,
                      quiet=args.quiet or args.json, log=logger(args))
        for lm in opened:
            log_cache(args, lm)
    finally:
        for lm in opened:
            lm.close()
    from lmscope.report.html import Report
    from lmscope.report.plots import plot_profile_result
    from lmscope.report.sections import _csv

    _csv(res.table, out / "profile.csv")
    write_json(out / "profile.json", res.to_dict())
    png = plot_profile_result(res, out / "profile.png")
    rep = Report(out, f"Pseudointelligence profile: {cap.name}")
    rep.text(res.summary_lines()[0])
    rep.image(png, "Advantage |P(model | g) - P(model | truth)| with its 95% interval (percentile bootstrap over "
                   "coin pairs, folded), per model and evaluator; open markers: inverted guesses (the signed "
                   "value, column signed_advantage, is negative).")
    rep.table(res.table)
    rep.write()
    emit(args, res.to_dict(), res.summary_lines() + [f"report: {out / 'index.html'} (transcripts in "
                                                       f"{out / 'transcripts'})"])


def _game_options(p) -> None:
    p.add_argument("--samples", type=positive_int, default=16, help="ground-truth samples the evaluator learns from "
                                                           "(the static benchmark's size) (default 16)")
    p.add_argument("--rounds", type=positive_int, default=4, help="interaction rounds (default 4)")
    p.add_argument("--queries", type=positive_int, default=2, help="queries per round (default 2)")
    p.add_argument("--threshold", type=non_negative_int, default=None,
                   help="wrong (or judged wrong) answers at which an evaluator says 'model' (default 1); for the "
                        "discriminator, responses it classifies as the model's (positive log-odds); without "
                        "--threshold it says 'model' when the summed log-odds of all its responses are positive")
    p.add_argument("--taxonomy", choices=["full", "none", "shuffled"], default="full",
                   help="the adaptive evaluator's query categories: the capability's kinds (default), shuffled "
                        "among its queries (seeded), or none (it learns from the queries' words)")
    p.add_argument("--no-probe", action="store_true", help="the adaptive evaluator does not probe the model "
                                                           "before the game")
    p.add_argument("--games", type=positive_int, default=100, help="games, each with a hidden fair coin (default 100)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the coins and the evaluators (default 0)")
    p.add_argument("--on-error", choices=["continue", "stop"], default="stop",
                   help="after a game in which the model failed: stop (default) or go on; either way the "
                        "game is recorded and not counted")
    p.add_argument("--judge-lm", metavar="SPEC", help="the lm-judge evaluator's language model (default: --lm)")
    add_lm_arguments(p)


def add_eval(sub, common) -> None:
    ev = sub.add_parser("eval", parents=[common], help="score a model on an evaluation task; eval game / "
                        "profile / list: the pseudointelligence game",
                        description="Top-1 / top-k accuracy, answer log-prob and log-loss per example, for causal "
                                    "LMs and masked-LM encoders. " + EVAL_SCHEMA_HELP,
                        epilog="Pseudointelligence: `lmscope eval game ...`, `lmscope eval profile ...` and "
                               "`lmscope eval list` (each has its own --help).")
    ev.add_argument("model", help=MODEL_HELP)
    ev.add_argument("--task", required=True, help=TASK_HELP)
    ev.add_argument("--limit", type=positive_int, help="score a seeded sample of this many examples")
    ev.add_argument("--seed", type=seed, default=0)
    ev.add_argument("--batch-size", type=positive_int, default=32)
    ev.add_argument("--top-k", type=positive_int, default=5)
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument("--out", help="folder for summary.json and examples.jsonl (per-example metrics)")
    add_force(ev)
    ev.set_defaults(func=cmd_eval)

    eg = sub.add_parser("eval-game", parents=[common], prog="lmscope eval game",
                        description="Pseudointelligence game: a hidden fair coin picks the model or the ground "
                                    "truth of a capability; the evaluator, limited to --samples ground-truth "
                                    "samples and --rounds x --queries queries, interacts and guesses which. "
                                    "Prints the advantage |P(says model | model) - P(says model | truth)| "
                                    "with a 95% bootstrap interval over --games games, and its signed value "
                                    "2 P(correct) - 1. Every game is appended to a JSONL transcript (resumed when it "
                                    "exists); --replay recomputes the result from a transcript without the "
                                    "model. `lmscope eval list` lists capabilities, models and evaluators.")
    eg.add_argument("--capability", help="a capability with ground truth (see `lmscope eval list`)")
    eg.add_argument("--model", help="truth, heuristic, memorizer, wrong-on:KIND, lm, lm:SPEC, small:RUN_DIR")
    eg.add_argument("--evaluator", help="static, fresh, adaptive, discriminator, lm-judge, self")
    eg.add_argument("--transcript", help="the JSONL transcript (default: OUT/transcript.jsonl, or a file in "
                                         "./lmscope-games named after the game)")
    eg.add_argument("--replay", metavar="TRANSCRIPT", help="recompute a finished run from its transcript")
    eg.add_argument("--out", help="folder for transcript.jsonl and summary.json (resumed in place)")
    eg.add_argument("--force", action="store_true", help="use an existing --out folder that holds other files")
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
    ep.add_argument("--force", action="store_true", help="use an existing --out folder that holds other files")
    _game_options(ep)
    ep.set_defaults(func=cmd_eval_profile)
    el = sub.add_parser("eval-list", parents=[common], prog="lmscope eval list",
                        description="The capabilities (with their query kinds), models and evaluators of "
                                    "lmscope eval game / profile.")
    el.set_defaults(func=cmd_eval_list)


COMMANDS = {"eval": add_eval}
