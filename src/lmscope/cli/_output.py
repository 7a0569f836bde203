"""What every command shares for its output: the result as lines or as one JSON document, status lines
on stderr, report folders written atomically, and the command line a report records."""

from __future__ import annotations

import sys
from pathlib import Path

from lmscope._io import dumps


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


def write_report(out, title, fill):
    """Build a report folder atomically: nothing partial is left if anything fails."""
    from lmscope._io import atomic_dir
    from lmscope.report.html import Report

    out = Path(out)
    with atomic_dir(out) as tmp:
        rep = Report(tmp, title)
        fill(rep)
        rep.write()
    return out


def command_line() -> str | None:
    """The command as typed, for a report to show; None when lmscope was not started as ``lmscope``."""
    return "lmscope " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("lmscope") else None
