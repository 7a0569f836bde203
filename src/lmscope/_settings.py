"""Settings dataclasses whose fields are also command-line options.

A method's run settings are written once, as a frozen dataclass deriving from :class:`Settings` with
fields made by :func:`setting`. The fields that have a help text become the options of the method's
command (``d_model`` -> ``--d-model``, type and default from the field; see
``lmscope.cli._settings.add_settings``), :meth:`Settings.from_args` reads them back from parsed
arguments, and :meth:`Settings.to_argv` writes a configuration as a command line (for sweeps). Fields
without a help text are Python-only settings.

>>> @dataclass(frozen=True)
... class MyConfig(Settings):
...     WHAT = "my_train option"
...     COMMAND = "lmscope my train"
...     steps: int = setting(100, "training steps (default 100)", minimum=1)
...     def __post_init__(self):
...         self.check_settings()

Nothing here imports the training stack, so building the command line stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field, fields, replace
from typing import ClassVar

from lmscope.errors import LmscopeError


def setting(default, help: str | None = None, *, sweep_help: str | None = None, minimum: int | None = None,
            number_above: float | None = None, parse: Callable[[str], object] | None = None):
    """A settings field. With ``help`` it is also a command-line option (``sweep_help`` replaces the
    help in a sweep command); ``minimum``: an integer at least this; ``number_above``: a finite number
    above this; ``parse``: for a text option, the function that checks a value and returns it in its
    canonical form (LmscopeError for a bad one), applied on the command line and in the API alike."""
    return field(default=default, metadata={"help": help, "sweep_help": sweep_help, "minimum": minimum,
                                            "number_above": number_above, "parse": parse})


class Settings:
    """The shared behaviour of settings dataclasses (see the module docstring). ``WHAT`` names a setting
    in messages (``unknown grok_train option 'x'``), ``COMMAND`` the command its options belong to."""

    WHAT: ClassVar[str] = "option"
    COMMAND: ClassVar[str] = "lmscope"

    def check_settings(self) -> None:
        """Check every field with a ``minimum`` (None is allowed where the field's type allows it) and
        put every field with a ``parse`` in its canonical form. Call it from ``__post_init__``."""
        for f in fields(self):
            value = getattr(self, f.name)
            optional = value is None and "None" in str(f.type)  # e.g. sample_size: int | None (all rows)
            if f.metadata.get("minimum") is not None and not optional:
                minimum = f.metadata["minimum"]
                if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                    raise LmscopeError(f"{f.name} must be an integer >= {minimum}, got {value!r}")
            parse = f.metadata.get("parse")
            if parse is not None and not optional:
                object.__setattr__(self, f.name, parse(value))

    @classmethod
    def options(cls) -> list:
        """The fields that are command-line options, in the order of the help."""
        return [f for f in fields(cls) if f.metadata["help"]]

    @staticmethod
    def flag(name: str) -> str:
        """The command-line option of a field: ``d_model`` -> ``--d-model``."""
        return "--" + name.replace("_", "-")

    @classmethod
    def make(cls, config=None, **settings):
        """``config`` (default: the defaults) with ``settings`` replaced; LmscopeError for an unknown name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise LmscopeError(f"unknown {cls.WHAT} {unknown[0]!r}")
        return replace(config or cls(), **settings)

    @classmethod
    def from_args(cls, args, **settings):
        """From parsed command-line options (an argparse Namespace): every option field it holds,
        except those given in ``settings``."""
        values = {f.name: getattr(args, f.name) for f in cls.options() if hasattr(args, f.name)}
        return cls.make(**{**values, **settings})

    def to_argv(self) -> list[str]:
        """The command-line options that give this configuration (every option field). LmscopeError
        for a setting the command line cannot express."""
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.metadata["help"]:
                if value != f.default:
                    raise LmscopeError(f"{f.name} is not a command-line option of {self.COMMAND}")
            elif value is None and f.default is None:
                continue  # the command line's default
            elif value is None:
                raise LmscopeError(f"{f.name}=None cannot be given on the command line")
            else:
                argv += [self.flag(f.name), str(value)]
        return argv
