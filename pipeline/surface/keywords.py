"""A command's options as Python keyword arguments: names, values in the option table's form, signatures.

`pipeline.surface.api`'s functions take the options of the command of the same name; this module makes their
signatures and docstrings from `pipeline.surface.options`, and binds the keywords given to option keys.
"""

from __future__ import annotations

import inspect
import keyword
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import options as opts

LIST_OPTIONS = {"precision", "target", "on", "emulate", "allow_missing"}
VARIADIC = {"folders"}  # positional arguments that take several values


def api_name(key: str) -> str:
    """An option's keyword: its command-line flag in Python spelling (`--batch-size` -> `batch_size`), or its key
    where the flag is a Python keyword (`--continue` -> `keep_going`)."""
    option = opts.OPTIONS[key]
    if not option.flags:
        return key
    name = option.flags[0].split("/")[0].removeprefix("--").replace("-", "_")
    return key if keyword.iskeyword(name) else name


def _normalised(key: str, value: Any) -> Any:
    """A Python value in the form the option table holds: lists for repeatable options, "1,2,4" for counts."""
    option = opts.OPTIONS[key]
    if key in LIST_OPTIONS and isinstance(value, str | os.PathLike):
        return [value]
    if key in ("threads", "calibration_samples") and isinstance(value, int | Sequence) and not isinstance(value, str):
        return ",".join(str(v) for v in ([value] if isinstance(value, int) else value))
    if option.type in (Path, Path | None) and isinstance(value, str):
        return Path(value)
    if key in VARIADIC:
        return [Path(v) for v in value]
    if option.parser is not None and isinstance(value, str) and key not in LIST_OPTIONS:
        return option.parser(value)
    if option.parser is not None and key in LIST_OPTIONS and value is not None:
        return [option.parser(str(v)) for v in value]
    return value


def bind(command: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every option of `command` by its key: the defaults, then what was given (by keyword)."""
    keys = {api_name(key): key for key in opts.COMMANDS[command]}
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise TypeError(f"{command}() got unexpected keyword argument(s) {', '.join(unknown)}")
    values = {key: opts.OPTIONS[key].value for key in keys.values()}
    values.update({keys[name]: _normalised(keys[name], value) for name, value in given.items()})
    if any(value is ... for value in values.values()):
        raise TypeError(f"{command}() needs {', '.join(api_name(k) for k, v in values.items() if v is ...)}")
    return values


def signature(command: str, first: str | None = None) -> inspect.Signature:
    """The keyword-only signature of an API function, made from the command's options."""
    parameters = []
    for key in opts.COMMANDS[command]:
        option = opts.OPTIONS[key]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if option.argument else inspect.Parameter.KEYWORD_ONLY
        default = inspect.Parameter.empty if option.value is ... else option.value
        if option.argument and key in VARIADIC:  # compare(A, B, C)
            kind, default = inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.empty
        parameters.append(inspect.Parameter(api_name(key), kind, default=default, annotation=option.type))
    extra = [
        inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool),
        inspect.Parameter("reporter", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Reporter | None"),
    ]
    return inspect.Signature([*parameters, *extra])


def documented(command: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Attach the command's signature, and a line per parameter (its help and default) to the docstring."""
    function.__signature__ = signature(command)  # type: ignore[attr-defined]
    lines = [
        f"    {api_name(key)}: {opts.OPTIONS[key].help}"
        + ("" if opts.OPTIONS[key].value in (None, ...) else f" (default: {opts.OPTIONS[key].value})")
        for key in opts.COMMANDS[command]
    ]
    lines += [
        "    progress: show progress and the result's table on a rich console (default: True)",
        "    reporter: a pipeline.progress.Reporter to report to instead",
    ]
    function.__doc__ = f"{function.__doc__}\n\nParameters (the options of `edge-pipeline {command}`):\n" + "\n".join(
        lines
    )
    return function
