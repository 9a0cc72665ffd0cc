"""The ceilings on what sizes work, and the one check of a caller's number against them.

Every option or argument that sets how much work, how many threads or how much memory a run takes is a whole
number between a floor and a documented maximum (docs/errors.md, "Limits"); anything else is one UsageError
line naming the argument and the bound, from the command line and from Python alike.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from .errors import UsageError

MAX_THREADS = 64  # interpreter threads, or the machine's cores when it has more (max_threads)
MAX_RUNS = 100_000  # timed invokes of `bench` (12 s for the shipped cnn here, ~35 min for a MobileNet on a Pi)
MAX_WARMUP = 10_000  # untimed invokes of `bench` before them
MAX_EVERY = 1_000_000  # stream: classify one frame in N (N frames are 9 hours of a 30 fps camera)
MAX_FRAME_KB = 64 << 10  # stream: the frame cap (64 MB); the reader holds one frame being split, 4 queued, 1 decoding
MAX_SCORE_IMAGES = 10_000  # `scores`: images in one .npy (a test split; edge-pipeline sends 1,000 by default)


def max_threads() -> int:
    """64 interpreter threads, or as many as the machine has cores when that is more."""
    return max(MAX_THREADS, os.cpu_count() or 1)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def whole_number(value: Any, name: str, minimum: int, maximum: int | None = None, why: str = "") -> int:
    """`value` as an int from `minimum` to `maximum`; a bool, a float, a string or anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be a whole number, got {_shown(value)}")
    value = int(value)
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum:,}, got {value:,}")
    if maximum is not None and value > maximum:
        reason = f" ({why})" if why else ""
        raise UsageError(f"{name} must be at most {maximum:,}{reason}, got {value:,}")
    return value


def optional_threads(threads: Any, name: str = "threads") -> int | None:
    """None (the runtime's choice) or a thread count from 1 to max_threads()."""
    if threads is None:
        return None
    return whole_number(threads, name, 1, max_threads(), "more threads than that only wait for the cores")


def real_number(value: Any, name: str) -> float:
    """A finite int or float (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value or abs(value) == float("inf"):
        raise UsageError(f"{name} must be a finite number, got {_shown(value)}")
    return float(value)


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False, got {_shown(value)}")
    return value
