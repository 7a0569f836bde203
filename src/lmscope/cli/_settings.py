"""Command-line options made from a settings dataclass (:mod:`lmscope._settings`): one option per field
with a help text, its converter from the field (an integer at least its minimum, a finite number, or a
text option's own parser), its default the field's."""

from __future__ import annotations

from lmscope.cli._numbers import OptionValueError, integer, number
from lmscope.errors import LmscopeError


def _text(parse):
    def convert(text: str):
        try:
            return parse(text)
        except LmscopeError as e:
            raise OptionValueError(str(e)) from None

    convert.__name__ = "text"
    return convert


def converter(f):
    """The argparse type of a settings field."""
    if f.metadata.get("parse") is not None:
        return _text(f.metadata["parse"])
    if f.metadata.get("minimum") is not None:
        return integer(f.metadata["minimum"])
    if f.metadata.get("number_above") is not None:
        return number(above=f.metadata["number_above"])
    return integer(0) if isinstance(f.default, int) else number()


def add_settings(p, cls, skip: tuple[str, ...] = (), sweep: bool = False) -> None:
    """Add the options of settings class ``cls`` to parser ``p`` (except ``skip``; ``sweep``: the
    fields' sweep help where they have one)."""
    for f in cls.options():
        if f.name not in skip:
            text = (sweep and f.metadata["sweep_help"]) or f.metadata["help"]
            p.add_argument(cls.flag(f.name), type=converter(f), default=f.default, help=text)
