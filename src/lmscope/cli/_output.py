"""What every command shares for its output: the result as lines or as one JSON document, status lines
on stderr, the output policy applied to --out (and every other written path) with the command's inputs,
report folders written atomically, and the command line a report records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lmscope._io import dumps

# arguments that name what a command writes, or hold no path
OUTPUT_ARGS = frozenset({"out", "report", "transcript", "func", "command", "json", "quiet", "force"})
FORCE_HELP = ("replace an existing --out folder that lmscope did not write (it is deleted as a whole; never "
              "allowed when the folder is, holds or is inside one of the command's inputs)")


def emit(args, payload: dict, lines: list[str]) -> None:
    """Print ``payload`` as one JSON document with --json, else ``lines``."""
    if args.json:
        print(dumps(payload))
    else:
        for line in lines:
            print(line)


def logger(args):
    """A function printing status lines to stderr, silent with --quiet or --json."""
    def log(msg: str) -> None:
        if not args.quiet and not args.json:
            print(msg, file=sys.stderr)

    return log


def add_force(p) -> None:
    """The --force option of a command with --out."""
    p.add_argument("--force", action="store_true", help=FORCE_HELP)


def _model_files(value: str) -> list[Path]:
    """The files a model-like argument stands for: a bundled name's file, an adapter folder's base."""
    from lmscope.models import BUNDLED
    from lmscope.models.bundled import MULTIPART

    if value in BUNDLED:
        if value in MULTIPART:  # assembled in lmscope's cache, which every output is kept out of
            return []
        from lmscope.errors import LmscopeError
        from lmscope.models import bundled_path

        try:
            return [bundled_path(value)]
        except LmscopeError:
            return []
    p = Path(value).expanduser()
    try:
        if not p.exists():
            return []
    except OSError:
        return []
    found = [p]
    if p.is_dir() and (p / "adapter_config.json").is_file():  # an adapter: its base model is an input too
        for meta in ("lmscope.json", "adapter_config.json"):
            try:
                doc = json.loads((p / meta).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            base = doc.get("base") or doc.get("base_model_name_or_path") if isinstance(doc, dict) else None
            if isinstance(base, str) and base and base != value:
                found += _model_files(base)
    return found


def command_inputs(args, extra=()) -> list[Path]:
    """Every path a command reads: each argument naming an existing file or folder (after a ``scheme:``
    prefix such as ``local:`` or ``small:`` too), bundled model names as their files, an adapter's base."""
    values: list[str] = []
    for key, v in vars(args).items():
        if key in OUTPUT_ARGS:
            continue
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, (str, os.PathLike)) and os.fspath(item):
                values.append(os.fspath(item))
    found: list[Path] = [Path(e) for e in extra if e is not None]
    for v in values:
        found += _model_files(v)
        if ":" in v:
            found += _model_files(v.split(":", 1)[1])
    return list(dict.fromkeys(found))


def check_out(args, attr: str = "out", kind: str = "dir", extra=(), own=(), run_markers=()) -> Path | None:
    """Apply the output policy to ``args.<attr>`` (None when not given) before the command does any work."""
    from lmscope.outputs import check_output

    value = getattr(args, attr, None)
    if value is None:
        return None
    return check_output(value, command_inputs(args, extra), kind=kind, force=bool(getattr(args, "force", False)),
                        what="--" + attr.replace("_", "-"), own=own, run_markers=run_markers)


def write_report(out, title, fill, args=None, extra=(), what: str = "--out"):
    """Build a report folder atomically under the output policy: nothing partial is left if anything
    fails, the folder bears lmscope's marker, and ``args`` (the command's) give its inputs and --force."""
    from lmscope.outputs import output_dir
    from lmscope.report.html import Report

    out = Path(out)
    inputs = command_inputs(args, extra) if args is not None else list(extra)
    force = bool(getattr(args, "force", False))
    with output_dir(out, inputs, command=command_line() or "lmscope", force=force,
                    what=what) as tmp:
        rep = Report(tmp, title)
        fill(rep)
        rep.write()
    return out


def command_line() -> str | None:
    """The command as typed, for a report to show; None when lmscope was not started as ``lmscope``."""
    return "lmscope " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("lmscope") else None
