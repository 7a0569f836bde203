"""Comma-separated option values: lists of integers (with ranges), numbers and names."""

from __future__ import annotations

from lmscope.errors import LmscopeError


def ints(text: str | None) -> list[int] | None:
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


def strs(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def floats(text: str | None, what: str) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LmscopeError(f"{what} must be comma-separated numbers, got {text!r}") from None


def int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise LmscopeError(f"{what} must be integers separated by commas, got {text!r}") from None
    if not values:
        raise LmscopeError(f"give at least one value for {what}")
    return values


def layer_arg(text: str | None):
    """``--layer``: None (the last), one integer (negative counts from the end), or a list such as 2,4,6-8."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        layers = ints(text)
    except ValueError:
        raise LmscopeError(f"--layer must be an integer or a list such as 2,4,6-8, got {text!r}") from None
    if not layers:
        raise LmscopeError(f"--layer must name at least one layer, got {text!r}")
    return layers if len(layers) > 1 else layers[0]
