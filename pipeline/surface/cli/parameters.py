"""Typer parameters made from the option declarations: the command line's half of the one option table.

Typer parses nothing here: every flag arrives as its text (None when not given) and is parsed once, with the
Python API's parser (`pipeline.surface.parsing`), so both say the same thing about the same mistake. Defaults
are shown from the declarations, never held by Typer.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer

from ...choices import Choice
from ..parsing import Option, optional_type, text_of

METAVARS = {int: "INTEGER", float: "NUMBER", Path: "PATH", str: "TEXT"}


def _repeatable(kind: Any) -> bool:
    """A tuple option given as a repeated flag (choices, hosts); counts are one `1,2,4` token instead."""
    return get_origin(kind) is tuple and get_args(kind)[0] not in (int, float)


def _metavar(option: Option, kind: Any) -> str | None:
    if option.opt.metavar:
        return option.opt.metavar
    if isinstance(kind, type) and issubclass(kind, Choice):
        return "|".join(kind.values())
    return METAVARS.get(kind)


def parameter(option: Option) -> inspect.Parameter:
    """The Typer parameter for one option: its flags, help and shown default; its value arrives unparsed."""
    kind, _ = optional_type(option.type)
    default = option.opt.default_value()
    if kind is bool:
        decls = [option.opt.flag] if option.opt.flag else []
        info = typer.Option(*decls, help=option.opt.help, show_default="/" in (option.opt.flag or "/"))
        annotation: Any = bool
        shown: Any = bool(default)
    else:
        info = typer.Option(option.flag, help=option.opt.help, metavar=_metavar(option, kind))
        annotation = list[str] | None if _repeatable(kind) else str | None
        shown = None if default in (None, ()) else text_of(default)
        if _repeatable(kind) and shown is not None:
            shown = [text_of(v) for v in default]
    # Typer holds the default only as text for --help: the value it passes is parsed like any other.
    return inspect.Parameter(option.keyword, inspect.Parameter.KEYWORD_ONLY, default=shown,
                             annotation=Annotated[annotation, info])  # fmt: skip


def argument(name: str, help_text: str, many: bool = False) -> inspect.Parameter:
    """A positional argument: MODEL_DIR, or FOLDERS..."""
    kind: Any = list[Path] if many else Path
    info = typer.Argument(help=help_text, metavar=name.upper())
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, info])
