"""A command's options bound to their values, and the Python functions' signatures and docstrings made from them.

`bind` takes what a caller gave (keyword arguments from Python, flags from the command line), parses each value
once into its declared type (`pipeline.surface.parsing`), and fills in every default: the result is the
command's TypedDict, complete. `documented` gives an API function its `__signature__` (what `help()` and
Jupyter show: each keyword's type and default) and a docstring listing them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from ..errors import UsageError
from .options import COMMANDS, FUNCTIONS
from .parsing import Option, options_of, parse, text_of

T = TypeVar("T")


@cache
def command_options(command: str) -> dict[str, Option]:
    """The options of an API function (`convert`, `evaluate_on`, ...) by keyword, in --help order."""
    return options_of(FUNCTIONS[command])


@cache
def cli_options(command: str) -> dict[str, Option]:
    """The options of a command of the command line by keyword, in --help order (each once)."""
    found: dict[str, Option] = {}
    for spec in COMMANDS[command]:
        for keyword, option in options_of(spec).items():
            if found.setdefault(keyword, option) != option:
                raise TypeError(f"{command}: two different options named {keyword}")
    return found


def _unknown(command: str, names: list[str], cli: bool) -> UsageError:
    known = cli_options(command) if cli else command_options(command)
    name = names[0]
    close = difflib.get_close_matches(name, list(known), n=1)
    spelled = f"--{name.replace('_', '-')}" if cli else name
    hint = f"; did you mean {known[close[0]].name(cli)}?" if close else ""
    where = f"edge-pipeline {command}" if cli else f"{command}()"
    return UsageError(f"{where} has no option {spelled}{hint}")


def bind(command: str, given: Mapping[str, object], cli: bool = False) -> dict[str, Any]:
    """Every option of `command`: what was given, parsed into its type, and the default of the rest.

    `cli`: `given` holds the command line's values (None: not given; text to parse); else Python keyword
    arguments (None means None, and must be allowed by the option's type). UsageError names the option as the
    caller spelled it.
    """
    options = cli_options(command) if cli else command_options(command)
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise _unknown(command, unknown, cli)
    values = {}
    for keyword, option in options.items():
        if keyword in given and not (cli and given[keyword] is None):
            values[keyword] = parse(given[keyword], option, cli)
        else:
            values[keyword] = option.opt.default_value()
    return values


def signature(command: str, positional: list[inspect.Parameter], returns: object) -> inspect.Signature:
    """The signature `help()` shows: the positional parameters, then every option keyword-only with its default."""
    keywords = [
        inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=o.opt.default_value(), annotation=o.type)
        for k, o in command_options(command).items()
    ]
    extra = [
        inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool),
        inspect.Parameter("reporter", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Reporter | None"),
    ]
    return inspect.Signature([*positional, *keywords, *extra], return_annotation=returns)


def documented(
    command: str, returns: str, raises: str, cli_name: str | None = None
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give an API function the signature and the parameter list of `command`'s options (`cli_name`: the command
    line's name of it, when another)."""

    def attach(function: Callable[..., T]) -> Callable[..., T]:
        own = inspect.signature(function)
        positional = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        positional = [p for p in positional if p.name not in ("progress", "reporter")]
        function.__signature__ = signature(command, positional, own.return_annotation)  # type: ignore[attr-defined]
        lines = []
        for keyword, option in command_options(command).items():
            default = option.opt.default_value()
            shown = "" if default in (None, ()) else f" (default: {text_of(default)})"
            lines.append(f"    {keyword}: {option.opt.help}{shown}")
        lines += [
            "    progress: show progress and the result's table on a rich console (default: True)",
            "    reporter: a pipeline.Reporter to report to instead",
        ]
        function.__doc__ = (
            f"{function.__doc__}\n\nParameters (the options of `edge-pipeline {cli_name or command}`):\n"
            + "\n".join(lines)
            + f"\n\nReturns:\n    {returns}\n\nRaises:\n    {raises}\n"
        )
        return function

    return attach
