"""`lmscope skills demos|segment|train|transfer`: LAST on BabyAI. Expert demonstrations from minigrid's bot,
their segmentation into short skills by a language model (or an ablation), temporal variational inference
that merges the segments into reusable skills, and transfer of the skills to new long-horizon levels."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._numbers import integer, positive_int, seed
from lmscope.cli._output import add_force, check_out, command_inputs, command_line, emit, write_report
from lmscope.errors import LmscopeError

N_MAX = 100_000
METHODS = ("lm", "fixed", "random", "none")


def _quiet(args) -> bool:
    return bool(args.quiet or args.json)


def cmd_demos(args) -> None:
    from lmscope.outputs import output_dir
    from lmscope.skills.demos import check_replays, make_demos, require_minigrid, resolve_level, write_demos

    require_minigrid()
    levels = list(dict.fromkeys(resolve_level(x.strip()) for x in args.level.split(",") if x.strip()))
    if not levels:
        raise LmscopeError("give at least one level with --level")
    level = ",".join(levels)
    check_out(args)
    demos = []
    for one in levels:
        demos += make_demos(one, args.n, args.seed, jobs=args.jobs, quiet=_quiet(args))
    failed = check_replays(demos)
    if failed:
        raise LmscopeError(f"{len(failed)} of {len(demos)} demos do not replay to success (first: demo "
                           f"{failed[0]}); nothing was written")
    with output_dir(args.out, command_inputs(args), command=command_line() or "lmscope skills demos",
                    force=args.force, checked=True) as tmp:
        write_demos(tmp, demos, level=level, n=args.n, seed=args.seed)
    lengths = [len(d) for d in demos]
    kinds: dict[str, int] = {}
    for d in demos:
        for s in d.subgoals:
            k = s.split("(")[0]
            kinds[k] = kinds.get(k, 0) + 1
    payload = {"level": level, "n": len(demos), "seed": args.seed, "steps": sum(lengths),
               "mean_length": sum(lengths) / len(lengths), "max_length": max(lengths), "replayed": len(demos),
               "subgoal_steps": kinds, "out": str(args.out)}
    lines = [f"{level}: {len(demos)} demos, {sum(lengths)} steps (mean {payload['mean_length']:.1f}, "
             f"max {max(lengths)}); every demo replays to success",
             "bot subgoals (steps): " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
             f"wrote {args.out}"]
    emit(args, payload, lines)


def cmd_segment(args) -> None:
    from lmscope._io import write_json
    from lmscope.outputs import output_dir
    from lmscope.skills.demos import load_demos, read_demo_manifest
    from lmscope.skills.segment import segment_demos, segmentation_quality, write_segments

    if args.method not in METHODS:
        raise LmscopeError(f"unknown --method {args.method!r}; choose from {', '.join(METHODS)}")
    read_demo_manifest(args.demos)
    demos = load_demos(args.demos)
    extra = [args.lm_cache] if args.method == "lm" and args.lm_cache else []
    check_out(args, extra=extra)
    lm = None
    if args.method == "lm":
        from lmscope.cli.lm import lm_from_args, log_cache

        lm = lm_from_args(args)
    try:
        segs = segment_demos(demos, args.method, lm=lm, seed=args.seed, quiet=_quiet(args))
        if lm is not None:
            log_cache(args, lm)
        identity = lm.identity() if lm is not None else None
    finally:
        if lm is not None:
            lm.close()
    with output_dir(args.out, command_inputs(args, extra), command=command_line() or "lmscope skills segment",
                    force=args.force, checked=True) as tmp:
        write_segments(tmp, segs, demos_dir=Path(args.demos).resolve(), method=args.method, lm_identity=identity)
        quality = segmentation_quality(demos, segs)
        write_json(tmp / "quality.json", quality)
    payload = {"demos": str(args.demos), "method": args.method, "lm": args.lm if lm is not None else None,
               "quality": quality, "out": str(args.out)}
    lines = [f"segmented {len(segs)} demos of {args.demos} ({args.method}"
             + (f", {args.lm}" if lm is not None else "") + ")"]
    lines += _quality_lines(quality) + [f"wrote {args.out}"]
    emit(args, payload, lines)


def _quality_lines(q: dict) -> list[str]:
    lines = []
    if "f1" in q:
        lines.append(f"segment starts against the bot's subgoal changes (within 1 step): precision "
                     f"{q['precision']:.3f}, recall {q['recall']:.3f}, F1 {q['f1']:.3f}")
    if "mean_segment_length" in q:
        lines.append(f"mean segment length {q['mean_segment_length']:.2f} actions")
    if q.get("by_source"):
        lines.append("sources: " + ", ".join(f"{k} {v}" for k, v in sorted(q["by_source"].items())))
    if q.get("by_reason"):
        lines.append("repairs and fallbacks: " + ", ".join(f"{k} {v}" for k, v in sorted(q["by_reason"].items())))
    return lines


def cmd_train(args) -> None:
    from lmscope.report.skills import write_library_report
    from lmscope.skills.config import SkillConfig
    from lmscope.skills.demos import load_demos
    from lmscope.skills.segment import load_segments, segments_demos_dir
    from lmscope.skills.train import train_skills

    config = SkillConfig.from_args(args)  # bad settings are refused before any input is read
    manifest, segs = load_segments(args.segments)
    demos_dir = segments_demos_dir(manifest)
    demos = load_demos(demos_dir)
    check_out(args, kind="run", run_markers=("run.json",), extra=[demos_dir])
    res = train_skills(args.out, demos, segs, config, quiet=_quiet(args), device=args.device)
    library = res.get("library") or {}
    write_library_report(args.out, library, demos, segs, command=command_line())
    last = res.get("last_metrics") or {}
    lines = [f"trained {config.skills} skills on {len(demos)} demos ({manifest.get('method')} segments) to step "
             f"{res.get('step')} in {args.out}"]
    for key in ("heldout_bc_nll", "heldout_action_acc", "kl", "dl", "segments_per_demo", "skills_used"):
        if isinstance(last.get(key), (int, float)):
            lines.append(f"{key}: {last[key]:.4f}")
    if isinstance(library.get("boundary_f1"), dict):
        b = library["boundary_f1"]
        lines.append(f"inferred skill starts against the bot's subgoal changes: F1 {b['f1']:.3f} "
                     f"(precision {b['precision']:.3f}, recall {b['recall']:.3f})")
    lines.append(f"skill library: {Path(args.out) / 'library.json'}; page: {Path(args.out) / 'index.html'}")
    emit(args, res, lines)


def cmd_transfer(args) -> None:
    from lmscope.cli._lists import int_list
    from lmscope.report.skills import fill_transfer_report
    from lmscope.skills.demos import require_minigrid, resolve_level
    from lmscope.skills.train import load_skill_run
    from lmscope.skills.transfer import TransferConfig, transfer

    require_minigrid()
    level = resolve_level(args.level)
    counts = int_list(args.demos, "--demos")
    config = TransferConfig(demo_counts=tuple(counts), episodes=args.episodes, steps=args.steps, seed=args.seed,
                            max_skill_steps=args.max_skill_steps)
    runs = {"skills": load_skill_run(args.run)}
    for item in args.compare or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise LmscopeError(f"--compare takes LABEL=RUN, got {item!r}")
        if label in runs or label == "flat":
            raise LmscopeError(f"--compare label {label!r} is used twice (or is the reserved 'flat')")
        runs[label] = load_skill_run(path)
    check_out(args)
    res = transfer(runs, level, config, quiet=_quiet(args), jobs=args.jobs)
    write_report(args.out, f"Skill transfer to {level}", lambda rep: fill_transfer_report(rep, res), args=args)
    lines = [f"transfer to {level}: success rate in {config.episodes} fresh episodes after behaviour cloning "
             f"from N demos"]
    lines += res.lines()
    lines.append(f"report: {Path(args.out) / 'index.html'}")
    emit(args, res.to_dict(), lines)


def add_skills(sub, common) -> None:
    from lmscope.cli._settings import add_settings
    from lmscope.cli.lm import add_lm_arguments

    sk = sub.add_parser("skills", help="LAST: skills from demonstrations, segmented by an LM, on BabyAI")
    ssub = sk.add_subparsers(dest="skills_command", metavar="ACTION", required=True)
    pd = ssub.add_parser("demos", parents=[common], help="expert demonstrations of a BabyAI level",
                         description="Solve N seeded episodes of a BabyAI level with minigrid's expert bot and "
                                     "store them: the symbolic observations, the actions, the mission, a short "
                                     "text per step for the LM and the bot's own subgoal at each step. Every "
                                     "demo is replayed in a fresh environment before anything is written.")
    pd.add_argument("--level", required=True, help="BabyAI levels, comma-separated: GoToLocal, PickupLoc, "
                                                   "OpenDoor, PutNextLocal, UnlockPickup, ... or BabyAI-NAME-v0")
    pd.add_argument("--n", type=integer(1, N_MAX), required=True, help="number of demonstrations per level")
    pd.add_argument("--seed", type=seed, default=0, help="seed of the episodes (default 0)")
    pd.add_argument("--jobs", type=positive_int, help="processes (default: all cores); the demos are the same")
    pd.add_argument("--out", required=True, metavar="DIR", help="the demonstration folder")
    add_force(pd)
    pd.set_defaults(func=cmd_demos)
    ps = ssub.add_parser("segment", parents=[common], help="cut each demo into short skills (LM or ablation)",
                         description="Ask the LM to cut each demonstration into consecutive skills of 2-5 "
                                     "actions with a description each; an answer that breaks the format is "
                                     "repaired where that is unambiguous, else the demo gets fixed segments of "
                                     "3 and is counted. Ablations: --method fixed (segments of 3), random "
                                     "(seeded lengths 2-5) or none (every step may start a skill). Answers are "
                                     "cached, so an interrupted run resumes where it stopped.")
    ps.add_argument("demos", help="a folder of lmscope skills demos")
    ps.add_argument("--method", default="lm", help="lm (default), fixed, random or none")
    ps.add_argument("--seed", type=seed, default=0, help="seed of --method random (default 0)")
    ps.add_argument("--out", required=True, metavar="SEG", help="the segmentation folder")
    add_force(ps)
    add_lm_arguments(ps)
    ps.set_defaults(func=cmd_segment)
    pt = ssub.add_parser("train", parents=[common], help="temporal variational inference of K skills",
                         description="Train the LAST model on a segmentation's demos: a bidirectional posterior "
                                     "over (skill, switch) that may open a skill only at a segment start, a "
                                     "prior over skills given the history and mission, and a policy over "
                                     "actions given the skill; loss = behaviour cloning + beta KL + the "
                                     "description-length term. Writes the skill library (library.json) and a "
                                     "page with segmentations drawn over the demos. Starting again in RUN "
                                     "resumes; another configuration there is refused.")
    pt.add_argument("segments", help="a folder of lmscope skills segment")
    pt.add_argument("--out", required=True, metavar="RUN", help="the run folder (an existing one is resumed)")
    from lmscope.skills.config import SkillConfig

    add_settings(pt, SkillConfig)
    pt.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    pt.set_defaults(func=cmd_train)
    pr = ssub.add_parser("transfer", parents=[common], help="learn a new level with the skills vs a flat policy",
                         description="Generate demonstrations of a new (long-horizon) level, then for each N in "
                                     "--demos train, by behaviour cloning from the first N, a high-level policy "
                                     "that picks the run's skills (run until their termination head ends them) "
                                     "and a flat policy over actions; success rate of each in fresh episodes.")
    pr.add_argument("run", help="a run folder of lmscope skills train")
    pr.add_argument("--level", required=True, help="the new level, e.g. UnlockPickup")
    pr.add_argument("--demos", default="5,10,25,50,100", help="numbers of demonstrations (default 5,10,25,50,100)")
    pr.add_argument("--episodes", type=integer(1, N_MAX), default=50,
                    help="fresh evaluation episodes per point (default 50)")
    pr.add_argument("--steps", type=integer(1, 1_000_000), default=1500,
                    help="behaviour-cloning steps per policy (default 1500)")
    pr.add_argument("--max-skill-steps", type=integer(1, 1000), default=12,
                    help="a skill runs at most this many steps before the high-level policy picks again "
                         "(default 12)")
    pr.add_argument("--compare", action="append", metavar="LABEL=RUN",
                    help="also the skills of another run (e.g. no-lm=RUN of --method none); repeatable")
    pr.add_argument("--seed", type=seed, default=0, help="seed of the demos, episodes and training (default 0)")
    pr.add_argument("--jobs", type=positive_int, help="processes generating demonstrations (default: all cores)")
    pr.add_argument("--out", required=True, metavar="DIR", help="the report folder")
    add_force(pr)
    pr.set_defaults(func=cmd_transfer)


COMMANDS = {"skills": add_skills}
