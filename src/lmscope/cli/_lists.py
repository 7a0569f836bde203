"""Comma-separated option values, parsed in one place: lists of non-negative integers with ranges
(``0,1,5-8``), of numbers (``0.9,0.5``) and of names (``q,down``), and ``--layer`` (one integer,
negative counting from the end, or a list). A value that is not such a list is an LmscopeError that
names the option; an option not given (None) stays None."""

from __future__ import annotations

import math
import re

from lmscope.errors import LmscopeError

MAX_RANGE = 100_000  # values one range may expand to (a typo such as 0-10000000000 is an error, not a hang)
_INT = re.compile(r"\d+")
_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")
_NEGATIVE = re.compile(r"-\s*\d+")


def _items(text: str, option: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise LmscopeError(f"give at least one value for {option}, got {text!r}")
    return items


def int_list(text: str | None, option: str) -> list[int] | None:
    """Non-negative integers and inclusive ranges: ``"0,1,5-8"`` -> [0, 1, 5, 6, 7, 8] (order and repeats kept)."""
    if text is None:
        return None
    out: list[int] = []
    for item in _items(text, option):
        if _INT.fullmatch(item):
            out.append(int(item))
        elif m := _RANGE.fullmatch(item):
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise LmscopeError(f"{option}: the range {item} is empty (write the smaller bound first), got {text!r}")
            if b - a >= MAX_RANGE:
                raise LmscopeError(f"{option}: the range {item} has more than {MAX_RANGE:,} values, got {text!r}")
            out.extend(range(a, b + 1))
        elif _NEGATIVE.fullmatch(item):
            raise LmscopeError(f"{option} takes no negative numbers, got {text!r}")
        else:
            raise LmscopeError(f"{option} must be integers separated by commas (ranges such as 5-8 allowed), "
                               f"got {text!r}")
    return out


def float_list(text: str | None, option: str) -> list[float] | None:
    """Finite numbers: ``"0.9,0.5,1e-2"`` -> [0.9, 0.5, 0.01]."""
    if text is None:
        return None
    out = []
    for item in _items(text, option):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise LmscopeError(f"{option} must be comma-separated numbers, got {text!r}")
        out.append(value)
    return out


def name_list(text: str | None, option: str) -> list[str] | None:
    """Names, stripped: ``"q, down"`` -> ["q", "down"]."""
    return None if text is None else _items(text, option)


def layer_arg(text: str | None, option: str = "--layer") -> int | list[int] | None:
    """``--layer``: None (the last), one integer (negative counts from the end), or a list such as 2,4,6-8
    (one layer: that integer)."""
    if text is None:
        return None
    if re.fullmatch(r"\s*-?\d+\s*", str(text)):
        return int(text)
    layers = int_list(text, option)
    return layers if len(layers) > 1 else layers[0]
