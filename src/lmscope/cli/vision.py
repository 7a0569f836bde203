"""`lmscope vision concepts|draw|score|recognize|correct|ssl|run`: the vision check-up. A language model
writes code that draws concepts; the code runs in the sandbox; the images are scored by an ImageNet
classifier and a shapes check; the LM recognizes concepts from stripped code and corrects its own drawings;
a small contrastive vision model is trained on the LM's images only."""

from __future__ import annotations

import sys
from pathlib import Path

from lmscope.cli._numbers import integer, number, positive_int, seed
from lmscope.cli._output import add_force, check_out, command_inputs, command_line, emit
from lmscope.errors import LmscopeError


def _quiet(args) -> bool:
    return bool(args.quiet or args.json)


def _list(value: str, allowed: tuple[str, ...], what: str, all_word: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if items == [all_word]:
        return list(allowed)
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise LmscopeError(f"unknown {what} {', '.join(bad) or repr(value)}; choose from {', '.join(allowed)} "
                           f"(comma-separated) or {all_word}")
    return list(dict.fromkeys(items))


def _limits(args):
    from lmscope.sandbox import Limits

    return Limits(cpu_seconds=args.timeout, wall_seconds=args.timeout * 2, memory_mb=args.memory_mb,
                  file_mb=32, processes=32)


def _write_drawing(args, samples, manifest, extra=()) -> dict:
    from lmscope.outputs import output_dir
    from lmscope.report.vision import write_galleries
    from lmscope.vision.draw import write_drawing

    with output_dir(args.out, command_inputs(args, extra), command=command_line() or "lmscope vision",
                    force=args.force, checked=True) as tmp:
        manifest = write_drawing(tmp, samples, manifest)
        write_galleries(tmp)
    return manifest


def cmd_concepts(args) -> None:
    from lmscope.vision.concepts import load_concepts

    concepts = load_concepts(args.tier, limit_per_tier=args.per_tier, seed=args.seed)
    payload = {"concepts": [c.to_dict() for c in concepts]}
    lines = [f"{c.tier:<8} {c.id:<34} {c.text}" + (f"  [ImageNet {', '.join(map(str, c.imagenet))}]"
                                                     if c.imagenet else "") for c in concepts]
    emit(args, payload, lines + [f"{len(concepts)} concepts"])


def cmd_draw(args) -> None:
    from lmscope.cli.lm import lm_from_args, log_cache
    from lmscope.sandbox import sandbox_backend
    from lmscope.vision.concepts import TIERS, load_concepts
    from lmscope.vision.draw import (
        check_draw_args,
        drawing_manifest,
        generate_code,
        outcome_lines,
        render_samples,
    )
    from lmscope.vision.render import LANGUAGES

    tiers = _list(args.tier, TIERS, "tier", "all")
    languages = _list(args.language, LANGUAGES, "language", "both")
    check_draw_args(args.samples, args.temperature, args.max_tokens)
    sandbox_backend(args.unsafe_no_sandbox)               # refuse before asking the LM for anything
    check_out(args)
    concepts = [c for t in tiers for c in load_concepts(t, limit_per_tier=args.per_tier, seed=args.seed)]
    lm = lm_from_args(args)
    try:
        samples = generate_code(lm, concepts, languages, args.samples, temperature=args.temperature,
                                seed=args.seed, max_tokens=args.max_tokens, quiet=_quiet(args))
        log_cache(args, lm)
        manifest = drawing_manifest(lm, concepts, languages, args.samples, args.temperature, args.seed,
                                    args.max_tokens, _limits(args), args.unsafe_no_sandbox)
    finally:
        lm.close()
    render_samples(samples, limits=_limits(args), jobs=args.jobs, unsafe=args.unsafe_no_sandbox, quiet=_quiet(args))
    manifest = _write_drawing(args, samples, manifest)
    lines = outcome_lines(manifest["outcomes"]) + [f"wrote {args.out} (galleries: {args.out}/<tier>/index.html)"]
    emit(args, {"outcomes": manifest["outcomes"], "out": str(args.out)}, lines)


def cmd_score(args) -> None:
    from lmscope._io import write_json
    from lmscope.outputs import output_dir
    from lmscope.report.vision import fill_score_report
    from lmscope.vision.classifier import open_classifier
    from lmscope.vision.draw import load_drawing
    from lmscope.vision.score import score_drawing

    drawing = load_drawing(args.drawing)
    check_out(args, extra=[args.drawing])
    result = score_drawing(drawing, open_classifier(), quiet=_quiet(args))
    with output_dir(args.out, command_inputs(args, [args.drawing]), command=command_line() or "lmscope vision score",
                    force=args.force, checked=True) as tmp:
        write_json(tmp / "scores.json", result.to_dict())
        fill_score_report(tmp, drawing, result)
    emit(args, {"table": result.table, "out": str(args.out)}, result.summary() + [f"wrote {args.out}"])


def cmd_recognize(args) -> None:
    from lmscope._io import write_json
    from lmscope.cli.lm import lm_from_args, log_cache
    from lmscope.outputs import output_dir
    from lmscope.vision.draw import load_drawing
    from lmscope.vision.pipeline import recognition_lines, recognize_drawing

    drawing = load_drawing(args.drawing)
    check_out(args, extra=[args.drawing])
    lm = lm_from_args(args)
    try:
        result = recognize_drawing(lm, drawing, k=args.k, seed=args.seed, quiet=_quiet(args))
        log_cache(args, lm)
    finally:
        lm.close()
    with output_dir(args.out, command_inputs(args, [args.drawing]),
                    command=command_line() or "lmscope vision recognize", force=args.force, checked=True) as tmp:
        write_json(tmp / "recognition.json", result.to_dict())
    emit(args, result.to_dict(), recognition_lines(result) + [f"wrote {args.out}"])


def cmd_correct(args) -> None:
    from lmscope.cli.lm import lm_from_args, log_cache
    from lmscope.sandbox import sandbox_backend
    from lmscope.vision.classifier import open_classifier
    from lmscope.vision.correct import FEEDBACK, self_correct
    from lmscope.vision.draw import load_drawing

    if args.feedback not in FEEDBACK:
        raise LmscopeError(f"unknown --feedback {args.feedback!r}; choose one of {', '.join(FEEDBACK)}")
    drawing = load_drawing(args.drawing)
    sandbox_backend(args.unsafe_no_sandbox)
    check_out(args, extra=[args.drawing])
    classifier = open_classifier()
    lm = lm_from_args(args)
    try:
        samples, result = self_correct(lm, drawing, args.rounds, classifier, feedback=args.feedback,
                                       temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens,
                                       limits=_limits(args), jobs=args.jobs, unsafe=args.unsafe_no_sandbox,
                                       quiet=_quiet(args), first=args.samples)
        log_cache(args, lm)
        manifest = {**drawing.manifest, "corrected_from": str(Path(args.drawing).resolve()),
                    "rounds": args.rounds, "feedback": args.feedback, "correction_lm": lm.spec,
                    "correction_seed": args.seed, "curve": result.curve}
    finally:
        lm.close()
    _write_drawing(args, samples, manifest, extra=[args.drawing])   # the curve is in drawing.json too
    emit(args, result.to_dict(), result.summary() + [f"wrote {args.out}"])


def cmd_ssl(args) -> None:
    from lmscope.outputs import write_marker
    from lmscope.vision.draw import load_drawing
    from lmscope.vision.pipeline import SSL_SOURCES, ssl_from_drawing, ssl_lines

    drawing = load_drawing(args.drawing)
    out = check_out(args, kind="run", own=SSL_SOURCES + ("comparison.json",),
                    run_markers=("comparison.json",), extra=[args.drawing])
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, command_line() or "lmscope vision ssl", kind="run")
    result = ssl_from_drawing(out, drawing, steps=args.steps, datasets=args.eval.split(","),
                              procedural=not args.no_baselines, seed=args.seed, quiet=_quiet(args))
    emit(args, result.to_dict(), ssl_lines(result) + [f"wrote {args.out}"])


def cmd_run(args) -> None:
    from PIL import Image

    from lmscope._io import check_input_file
    from lmscope.outputs import output_dir
    from lmscope.vision.render import render

    path = check_input_file(args.code, "code file")
    language = args.language or {".py": "python", ".svg": "svg"}.get(path.suffix.lower())
    if language is None:
        raise LmscopeError(f"{path}: cannot tell the language from the suffix {path.suffix!r}; "
                           "give --language python or svg")
    data = path.read_bytes()
    if len(data) > 1_000_000:
        raise LmscopeError(f"{path}: {len(data)} bytes of code is over the 1 MB limit")
    check_out(args, extra=[path])
    r = render(data.decode("utf-8", "replace"), language, limits=_limits(args), unsafe=args.unsafe_no_sandbox)
    with output_dir(args.out, command_inputs(args, [path]), command=command_line() or "lmscope vision run",
                    force=args.force, checked=True) as tmp:
        from lmscope._io import write_json

        write_json(tmp / "result.json", {"code": str(path), "language": language, **r.to_dict()})
        if r.image is not None:
            Image.fromarray(r.image).save(tmp / "image.png", format="PNG")
    if r.outcome != "image":
        print(f"lmscope: sample failed: {r.outcome}" + (f": {r.detail}" if r.detail else ""), file=sys.stderr)
        raise SystemExit(3)
    emit(args, {"outcome": r.outcome, "image": str(Path(args.out) / "image.png"), "seconds": r.seconds},
         [f"drew {Path(args.out) / 'image.png'} in {r.seconds:.2f} s"])


def _sandbox_options(p) -> None:
    p.add_argument("--timeout", type=number(above=0, maximum=3600), default=20.0,
                   help="CPU seconds per sample (wall: twice that; default 20)")
    p.add_argument("--memory-mb", type=integer(64, 1_000_000), default=2048,
                   help="address space per sample process in MB (default 2048)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run LM-written code without isolation where bubblewrap is missing (limits only)")


def _lm_options(p, what: str) -> None:
    from lmscope.cli.lm import add_lm_arguments

    p.add_argument("--temperature", type=number(minimum=0, maximum=5), default=0.8,
                   help=f"sampling temperature of the {what} (default 0.8)")
    p.add_argument("--max-tokens", type=integer(16, 8192), default=768, help="tokens per answer (default 768)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the samples (default 0)")
    p.add_argument("--jobs", type=positive_int, help="sandboxes run at once (default: all cores)")
    add_lm_arguments(p)


def add_vision(sub, common) -> None:
    from lmscope.cli.lm import add_lm_arguments

    vi = sub.add_parser("vision", help="the vision check-up: LMs drawing, recognizing and correcting images via code")
    vsub = vi.add_subparsers(dest="vision_command", metavar="ACTION", required=True)
    pc = vsub.add_parser("concepts", parents=[common], help="list the concept set (shapes, objects, scenes)")
    pc.add_argument("--tier", help="shapes, objects or scenes (default: all)")
    pc.add_argument("--per-tier", type=integer(1, 10_000), help="a seeded, spread choice of N per tier")
    pc.add_argument("--seed", type=seed, default=0, help="seed of --per-tier (default 0)")
    pc.set_defaults(func=cmd_concepts)
    pd = vsub.add_parser("draw", parents=[common], help="the LM writes drawing code; the sandbox renders it",
                         description="For each concept and language, sample N answers from the LM, take the code "
                                     "out, run it in the sandbox and save the image, the code and the prompt; "
                                     "each outcome (image, blank, syntax error, runtime error, timeout, limit) is "
                                     "counted. Answers are cached, so an interrupted run resumes.")
    pd.add_argument("--tier", default="all", help="shapes, objects, scenes, comma-separated, or all (default)")
    pd.add_argument("--language", default="both", help="python, svg, or both (default)")
    pd.add_argument("--samples", type=integer(1, 1000), default=4, help="samples per concept and language (default 4)")
    pd.add_argument("--per-tier", type=integer(1, 10_000), help="concepts per tier (a seeded choice; default all)")
    pd.add_argument("--out", required=True, metavar="DIR", help="the drawing folder")
    add_force(pd)
    _lm_options(pd, "drawings")
    _sandbox_options(pd)
    pd.set_defaults(func=cmd_draw)
    ps = vsub.add_parser("score", parents=[common], help="fidelity (ImageNet classifier), shapes check, diversity")
    ps.add_argument("drawing", help="a drawing folder of lmscope vision draw or correct")
    ps.add_argument("--out", required=True, metavar="SCORES", help="the scores folder")
    add_force(ps)
    ps.set_defaults(func=cmd_score)
    pr = vsub.add_parser("recognize", parents=[common], help="the LM names the concept of stripped drawing code")
    pr.add_argument("drawing", help="a drawing folder")
    pr.add_argument("--k", type=integer(2, 50), default=5, help="candidates per question (default 5)")
    pr.add_argument("--seed", type=seed, default=0, help="seed of the distractors (default 0)")
    pr.add_argument("--out", required=True, metavar="REC", help="the recognition folder")
    add_force(pr)
    add_lm_arguments(pr)
    pr.set_defaults(func=cmd_recognize)
    pk = vsub.add_parser("correct", parents=[common], help="the LM improves its own drawings for R rounds")
    pk.add_argument("drawing", help="a drawing folder")
    pk.add_argument("--rounds", type=integer(1, 20), default=2, help="rounds of correction (default 2)")
    pk.add_argument("--feedback", default="none", help="none (default) or classifier: quote its top-3 labels")
    pk.add_argument("--samples", type=integer(1, 1000), help="correct only the first N samples of each concept "
                                                             "and language (default: all)")
    pk.add_argument("--out", required=True, metavar="DIR2", help="the corrected drawing folder (all rounds)")
    add_force(pk)
    _lm_options(pk, "corrections")
    _sandbox_options(pk)
    pk.set_defaults(func=cmd_correct)
    pl = vsub.add_parser("ssl", parents=[common], help="a contrastive vision model trained on the LM's images only")
    pl.add_argument("drawing", help="a drawing folder (its images are the training set)")
    pl.add_argument("--steps", type=integer(1, 1_000_000), default=1500, help="training steps (default 1500)")
    pl.add_argument("--eval", default="digits", help="digits and/or fashion-mnist, comma-separated (default digits)")
    pl.add_argument("--no-baselines", action="store_true", help="skip the procedural-image baselines")
    pl.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    pl.add_argument("--out", required=True, metavar="RUN", help="the run folder (an existing one is resumed)")
    pl.set_defaults(func=cmd_ssl)
    pu = vsub.add_parser("run", parents=[common], help="run one piece of drawing code (.py or .svg) in the sandbox",
                         description="Exit 0 with DIR/image.png; exit 3 and one line naming the failure (error, "
                                     "timeout, limit, blank) when the sample fails; exit 2 for usage errors.")
    pu.add_argument("code", help="a .py (matplotlib) or .svg file")
    pu.add_argument("--language", choices=("python", "svg"), help="default: from the suffix")
    pu.add_argument("--out", required=True, metavar="DIR", help="the output folder")
    add_force(pu)
    _sandbox_options(pu)
    pu.set_defaults(func=cmd_run)


COMMANDS = {"vision": add_vision}
