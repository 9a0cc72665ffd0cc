"""Text for the rich console that came from a user or a model folder: shown, never interpreted.

Rich reads ``[...]`` as markup (a label ``[/]`` would crash a table) and passes control characters to
the terminal (``ESC[2J``, OSC 52). Every label, name, path and message made of them goes through `user`.
"""

from __future__ import annotations

from rich.markup import escape

from edge_runtime.text import printable


def user(value: object) -> str:
    """`value` as console markup that prints exactly its text, control characters escaped."""
    return escape(printable(value))
