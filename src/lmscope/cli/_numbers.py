"""Numeric command-line options, checked in one place: argparse ``type=`` converters for integers and
finite numbers in a range. A bad value is one line naming the option and the allowed range
(``lmscope: error: argument --lr: must be a number > 0, got 'nan'``), exit 2, like every user error
(see :class:`OptionValueError`). The same checks (:func:`lmscope.errors.check_int`,
:func:`lmscope.errors.check_number`) guard the Python API."""

from __future__ import annotations

import argparse

from lmscope.errors import LmscopeError, check_int, check_number

SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit


class OptionValueError(argparse.ArgumentTypeError):
    """A value out of an option's range. The command line reports it as ``lmscope: error: argument
    --OPTION: ...`` (one line, exit 2) rather than as argparse's usage message."""


def integer(minimum: int | None = None, maximum: int | None = None):
    """A converter: an integer in [minimum, maximum]."""
    def convert(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise OptionValueError(f"must be an integer, got {text!r}") from None
        try:
            return check_int("value", value, minimum, maximum)
        except LmscopeError as e:
            raise OptionValueError(str(e).removeprefix("value ").replace(f"got {value!r}",
                                                                                    f"got {text!r}")) from None

    convert.__name__ = "integer"
    return convert


def number(minimum: float | None = None, maximum: float | None = None, *, above: float | None = None,
           below: float | None = None):
    """A converter: a finite number in range (``minimum``/``maximum`` inclusive, ``above``/``below`` not)."""
    def convert(text: str) -> float:
        try:
            return check_number("value", str(text).strip(), minimum, maximum, above=above, below=below)
        except LmscopeError as e:
            raise OptionValueError(str(e).removeprefix("value ")) from None

    convert.__name__ = "number"
    return convert


positive_int = integer(1)
non_negative_int = integer(0)
seed = integer(0, SEED_MAX)
positive_number = number(above=0)
non_negative_number = number(0.0)
probability = number(above=0, maximum=1.0)  # (0, 1]
fraction = number(above=0, below=1)  # (0, 1)
