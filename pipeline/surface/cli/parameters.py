"""Typer parameters made from pipeline.surface.options: the command line's half of the one option table."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ...errors import UsageError
from ..options import Opt


def _typer_parser(parser: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """The option's parser, its one-line UsageError turned into Typer's usage error (exit 2)."""
    if parser is None:
        return None

    def parse(text: str) -> Any:
        try:
            return parser(text)
        except UsageError as error:
            raise typer.BadParameter(str(error)) from None

    return parse


def parameter(name: str, option: Opt) -> inspect.Parameter:
    """The Typer parameter for one option: its flags, help, parser, and the config's default."""
    if option.argument:
        info = typer.Argument(help=option.help, metavar=name.upper())
    else:
        info = typer.Option(
            *option.flags, help=option.help, parser=_typer_parser(option.parser), metavar=option.metavar
        )
    annotation = Annotated[option.type, info]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option.value, annotation=annotation)
