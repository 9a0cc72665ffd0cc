"""One parser for every option, shared by the command line and the Python API.

An option is declared once, in `pipeline.surface.options`, as a keyword of a command's TypedDict: its Python type
(what the stage's config field takes), and an `Opt` (its help, the config fields it feeds, its bounds). `parse`
turns what a person gave into that type: the text of a command-line flag, or a Python value (strictly: a string is
not a number, `True` is not a count). Every wrong type or value is a one-line UsageError naming the option as the
caller spelled it (`--threads` on the command line, `threads` in Python). Nothing here coerces later: the configs
receive the parsed values as they are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from ..choices import Choice, parse_choice
from ..errors import UsageError

NOTHING: Any = object()  # an option without a default of its own (it reads its config field's)


@dataclass(frozen=True)
class Opt:
    """What an option is beside its type: help, the config fields it feeds, bounds, its flag on the command line.

    The default is the fed config field's (one place); `default` is only for options that feed no field. `low`
    and `high` bound numbers and counts (inclusive unless `*_open`); `hint` follows a bound's message.
    `neutral` options change where or how a stage runs, not what it makes (stage records leave them out).
    """

    help: str
    feeds: tuple[tuple[type, str], ...] = ()
    default: Any = NOTHING
    flag: str | None = None  # e.g. "--continue" or "--augment/--no-augment"; default --<keyword with dashes>
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    hint: str = ""
    neutral: bool = False
    metavar: str | None = None

    def default_value(self) -> Any:
        """The option's default: its first config field's (all it feeds agree: tests/test_cli_options.py)."""
        if not self.feeds:
            return None if self.default is NOTHING else self.default
        return field_default(*self.feeds[0])


def field_default(cls: type, name: str) -> Any:
    """A dataclass field's default (calling its factory)."""
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    if found.default is not dataclasses.MISSING:
        return found.default
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    raise TypeError(f"{cls.__name__}.{name} has no default")


@dataclass(frozen=True)
class Option:
    """One keyword of one command: its name, type and declaration."""

    keyword: str
    type: Any  # the Python type the stage's config takes
    opt: Opt

    @property
    def flag(self) -> str:
        """Its command-line flag (the first, for flags like --augment/--no-augment)."""
        return (self.opt.flag or "--" + self.keyword.replace("_", "-")).split("/")[0]

    def name(self, cli: bool) -> str:
        return self.flag if cli else self.keyword


def options_of(spec: type) -> dict[str, Option]:
    """A command's options (its TypedDict's keys, in declaration order) with their types and declarations."""
    hints = typing.get_type_hints(spec, include_extras=True)
    found = {}
    for keyword, hint in hints.items():
        args = get_args(hint)
        opt = next((a for a in args[1:] if isinstance(a, Opt)), None) if args else None
        if opt is None:
            raise TypeError(f"{spec.__name__}.{keyword} is not Annotated with an Opt")
        found[keyword] = Option(keyword, args[0], opt)
    return found


# --- the parser ------------------------------------------------------------------------------------


def optional_type(kind: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if get_origin(kind) in (typing.Union, types.UnionType):
        rest = [a for a in get_args(kind) if a is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) != len(get_args(kind))
    return kind, False


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _n(value: float | None) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounded(value: float, option: Option, name: str) -> None:
    opt = option.opt
    low_bad = opt.low is not None and (value <= opt.low if opt.low_open else value < opt.low)
    high_bad = opt.high is not None and (value >= opt.high if opt.high_open else value > opt.high)
    if not (low_bad or high_bad):
        return
    hint = f"; {opt.hint}" if opt.hint else ""
    low = None if opt.low is None else f"{'above' if opt.low_open else 'at least'} {_n(opt.low)}"
    high = None if opt.high is None else f"{'below' if opt.high_open else 'at most'} {_n(opt.high)}"
    if low and high and not (opt.low_open or opt.high_open):
        message = f"{name} must be between {_n(opt.low)} and {_n(opt.high)}, got {value}"
    else:
        message = f"{name} must be {' and '.join(part for part in (low, high) if part)}, got {value}"
    raise UsageError(message + hint)


def _number(kind: type, value: object, text: bool, name: str) -> int | float:
    whole = kind is int
    if text and isinstance(value, str):
        try:
            number: Any = int(value) if whole else float(value)
        except ValueError:
            raise UsageError(f"{name} wants {'a whole number' if whole else 'a number'}, got {value!r}") from None
    elif whole and isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif not whole and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        wants = "a whole number (int)" if whole else "a number"
        raise UsageError(f"{name} wants {wants}, got {_shown(value)} ({type(value).__name__})")
    if not whole and not math.isfinite(number):
        raise UsageError(f"{name} wants a finite number, got {value!r}")
    return number


def _scalar(kind: Any, value: object, option: Option, name: str, text: bool) -> Any:
    if isinstance(kind, type) and issubclass(kind, Choice):
        if not isinstance(value, str):
            raise UsageError(f"{name} wants one of {', '.join(kind.values())}, got {_shown(value)}")
        return parse_choice(kind, value, name)
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{name} wants True or False, got {_shown(value)} ({type(value).__name__})")
        return value
    if kind in (int, float):
        number = _number(kind, value, text, name)
        _bounded(number, option, name)
        return number
    if kind is Path:
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            raise UsageError(f"{name} wants a path, got {_shown(value)}")
        return Path(value)
    if kind is str:
        if not isinstance(value, str):
            raise UsageError(f"{name} wants text (str), got {_shown(value)} ({type(value).__name__})")
        return value
    raise TypeError(f"no parser for {kind!r}")  # a declaration error, found by the tests


def _items(value: object, item: Any, text: bool, name: str) -> list[object]:
    """The items of a repeatable option: a list from the command line (each may be `a,b`), one or several from
    Python; numbers and choices may also be written `1,2,4` (the command line's one token)."""
    splits = item in (int, float) or (isinstance(item, type) and issubclass(item, Choice))
    if isinstance(value, str | os.PathLike | int | float) and not isinstance(value, bool):
        raw: list[object] = [value]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        raw = list(value)
    else:
        raise UsageError(f"{name} wants one value or a list of them, got {_shown(value)} ({type(value).__name__})")
    if splits:
        raw = [
            p.strip() if isinstance(p, str) else p for v in raw for p in (v.split(",") if isinstance(v, str) else [v])
        ]
        raw = [p for p in raw if p != ""]
        text = text or any(isinstance(p, str) and item in (int, float) for p in raw)
    if not raw:
        raise UsageError(f"{name} wants at least one value")
    return raw


def parse(value: object, option: Option, cli: bool) -> Any:
    """`value` as `option`'s type, checked; UsageError naming the option otherwise.

    `cli`: the value is the command line's text (numbers are parsed from it); else a Python value, taken only
    when of the declared type (a Path may be a str, a choice its spelling, a tuple one value or any sequence).
    """
    name = option.name(cli)
    kind, nullable = optional_type(option.type)
    if value is None:
        if nullable:
            return None
        raise UsageError(f"{name} must not be None")
    if get_origin(kind) is tuple:
        item = get_args(kind)[0]
        parsed = [_scalar(item, v, option, name, cli or (isinstance(v, str) and item in (int, float)))
                  for v in _items(value, item, cli, name)]  # fmt: skip
        return tuple(dict.fromkeys(parsed)) if item not in (Path, float) else tuple(parsed)  # 0,0,255 stays
    return _scalar(kind, value, option, name, cli)


def text_of(value: Any) -> str:
    """A default as the command line writes it (help text): `1,2,4`, `int8`, a path."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple):
        return ",".join(text_of(v) for v in value)
    return str(value)
