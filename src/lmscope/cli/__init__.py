"""The ``lmscope`` command line. Thin: parses arguments, calls the API, prints or writes results.

One module per command group holds its parser beside its handlers and exposes ``COMMANDS``
({top-level command: function adding it to the subparsers}); it may also expose
``prepare_argv(argv) -> argv`` to rewrite a command line before parsing. A new group adds its module
and one entry in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import sys
import warnings

from lmscope import __version__
from lmscope.cli.lm import add_lm_arguments, lm_from_args
from lmscope.errors import LmscopeError

__all__ = ["COMMANDS", "add_lm_arguments", "build_parser", "lm_from_args", "main"]

# (top-level command, module of lmscope.cli that adds it), in the order `lmscope --help` lists them
COMMANDS = (("checkup", "checkup"), ("models", "models"), ("spectrum", "spectral"), ("intruders", "spectral"),
            ("finetune", "train"), ("laser", "spectral"), ("eval", "eval"), ("forgetting", "train"),
            ("data", "data"), ("trees", "trees"), ("grok", "grok"), ("pushdown", "pushdown"), ("lm", "lm"), ("priors", "priors"),
            ("ada", "ada"), ("skills", "skills"), ("vision", "vision"), ("cache", "models"))


def _modules() -> list:
    return [importlib.import_module(f"lmscope.cli.{m}") for m in dict.fromkeys(m for _, m in COMMANDS)]


class _OptionError(Exception):
    """A numeric option's value out of range (see lmscope.cli._numbers): reported like an LmscopeError."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        from lmscope.cli._numbers import OptionValueError

        # argparse calls error() while handling the ArgumentError it raised for the converter's error
        if isinstance(getattr(sys.exc_info()[1], "__context__", None), OptionValueError):
            raise _OptionError(message)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as one JSON document")
    common.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    p = _Parser(prog="lmscope", description="Look inside language models, edit them, and use "
                                "them as parts of larger systems.")
    p.add_argument("--version", action="version", version=f"lmscope {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS:
        importlib.import_module(f"lmscope.cli.{module}").COMMANDS[name](sub, common)
    return p


def _prepare_argv(argv: list[str]) -> list[str]:
    """The command line after every group's ``prepare_argv`` (e.g. `eval game` -> the eval-game command)."""
    for module in _modules():
        argv = getattr(module, "prepare_argv", lambda a: a)(argv)
    return argv


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["LMSCOPE_QUIET_TRANSFORMERS"] = "1"  # applied when transformers is first used
    warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = _prepare_argv([str(a) for a in (sys.argv[1:] if argv is None else argv)])
    try:
        args = parser.parse_args(argv)
    except _OptionError as e:
        print(f"lmscope: error: {e}", file=sys.stderr)
        return 2
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
    except BrokenPipeError:  # the output went to a reader that stopped (`lmscope data task x | head`)
        with contextlib.suppress(OSError, ValueError):  # nothing more to flush there at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a process ended by SIGPIPE
    except OSError as e:  # the last resort for a write that no output helper mapped: one line naming the path
        from lmscope.outputs import WRITE_ERRORS, write_error

        if e.errno not in WRITE_ERRORS or not (e.filename or e.errno in (errno.ENOSPC, errno.EDQUOT)):
            raise
        print(f"lmscope: error: {write_error(e)}", file=sys.stderr)
        return 2
    return 0
