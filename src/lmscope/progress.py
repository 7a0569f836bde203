"""Progress bars: shown on a terminal, silent otherwise or when quiet."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def progress(iterable=None, total=None, desc: str | None = None, quiet: bool | None = None, **kw):
    disable = _QUIET if quiet is None else quiet
    if not disable and not sys.stderr.isatty() and not os.environ.get("LMSCOPE_PROGRESS"):
        disable = True
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kw)
