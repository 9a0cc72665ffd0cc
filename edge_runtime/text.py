"""Text from a model folder or a user, made safe for a terminal: control characters shown, never obeyed.

Labels, model names and file names come from files anyone can write. Printed raw, ``ESC[2J`` clears the
screen and an OSC 52 sequence writes the clipboard; a newline forges a table row. Tables and messages
show such characters as escapes (``\\x1b``); JSON output stays exact (json escapes them itself).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the invisible format characters that reorder or hide text
# (bidirectional overrides and isolates, zero-width marks, the byte-order mark).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """`str(value)` with every control or invisible format character written as an escape."""
    return _UNSAFE.sub(_escape, str(value))
