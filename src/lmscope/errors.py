"""Errors a user can cause. The CLI turns these into one clear line and a non-zero exit."""


class LmscopeError(Exception):
    """A problem with the user's input (file, model, option value), reported without a traceback."""


def _bound(value, minimum, maximum, above, below) -> str | None:
    """A description of the allowed range when ``value`` lies outside it, else None."""
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    elif minimum is not None:
        parts.append(f">= {minimum:g}" if isinstance(minimum, float) else f">= {minimum:,}")
    if below is not None:
        parts.append(f"< {below:g}")
    elif maximum is not None:
        parts.append(f"<= {maximum:g}" if isinstance(maximum, float) else f"<= {maximum:,}")
    bad = ((above is not None and not value > above) or (minimum is not None and value < minimum)
           or (below is not None and not value < below) or (maximum is not None and value > maximum))
    return " and ".join(parts) if bad else None


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` when it is an integer in [minimum, maximum] (a bound None is open); else an LmscopeError
    naming ``name`` and the allowed range. Used by the API's configs and the command line alike."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            ok = isinstance(value, np.integer)
        except ImportError:  # pragma: no cover
            ok = False
        if not ok:
            raise LmscopeError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    allowed = _bound(value, minimum, maximum, None, None)
    if allowed:
        raise LmscopeError(f"{name} must be an integer {allowed}, got {value!r}")
    return value


def check_number(name: str, value, minimum: float | None = None, maximum: float | None = None, *,
                 above: float | None = None, below: float | None = None) -> float:
    """``value`` as a float when it is a finite number in range (``minimum``/``maximum`` inclusive,
    ``above``/``below`` exclusive; None: open); else an LmscopeError naming ``name`` and the range."""
    import math

    if isinstance(value, bool):
        raise LmscopeError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LmscopeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise LmscopeError(f"{name} must be a finite number, got {value!r}")
    allowed = _bound(number, minimum, maximum, above, below)
    if allowed:
        raise LmscopeError(f"{name} must be a number {allowed}, got {value!r}")
    return number
