"""The checks every value of metadata.json goes through (records.py, its one parser, calls them): each returns the
value when it is of the kind and range asked, else raises one MetadataError line naming where and what."""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import MetadataError
from ..text import printable

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _shown(value: Any) -> str:
    text = repr(value)
    return printable(text if len(text) <= 60 else text[:57] + "...")


def _bad(where: str, name: str, wants: str, value: Any) -> MetadataError:
    return MetadataError(f"{where}: {name} must be {wants}, not {_shown(value)}")


def integer(value: Any, where: str, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(where, name, f"a whole number from {low:,} to {high:,}", value)
    return value


def number(value: Any, where: str, name: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(where, name, "a finite number", value)
    if positive and value <= 0:
        raise _bad(where, name, "a number above 0", value)
    return float(value)


def boolean(value: Any, where: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(where, name, "true or false", value)
    return value


def string(value: Any, where: str, name: str, limit: int = 1000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(where, name, f"a string of at most {limit} characters", value)
    return value


def choice(value: Any, where: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _bad(where, name, f"one of {', '.join(allowed)}", value)
    return str(value)


def optional(value: Any, check: Any, *args: Any) -> Any:
    return None if value is None else check(value, *args)


def obj(value: Any, where: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, name, "an object", value)
    return value


def sha256(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise _bad(where, name, "a sha256: 64 lowercase hex digits", value)
    return value
