"""Choices as the pipeline validates them: edge_runtime's str Enums, parsed once with one-line usage errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from edge_runtime.choices import BackendName, Calibration, Choice, IoType, Precision, Route, Target

from .errors import UsageError

__all__ = [
    "BackendName",
    "Calibration",
    "Choice",
    "GateCheck",
    "IoType",
    "Precision",
    "Route",
    "Target",
    "parse",
    "parse_precisions",
    "parse_targets",
]
C = TypeVar("C", bound=Choice)


class GateCheck(Choice):
    """A check of `compare --baseline` that `--allow-missing` lets be missing (it cannot be made) without failing."""

    ACCURACY = "accuracy"  # no test images for one of the two, or not the same ones, or a file that cannot run
    LATENCY = "latency"  # the re-timing here could not run a file
    SIZE = "size"
    EMULATED = "emulated"  # every emulated CPU's instruction count
    CORTEX_A76 = "cortex-a76"  # one emulated CPU's (pi5)
    CORTEX_A72 = "cortex-a72"  # (pi4)
    CORTEX_A53 = "cortex-a53"  # (pi3, zero2w)


# What the usage error says for each kind of choice (tests and README quote these).
MESSAGES = {
    Precision: "unknown precision {value!r}; choose from {choices}",
    IoType: "--io-type {value!r} is not one of {choices}",
    Route: "--route {value!r} is not one of {choices}",
    Calibration: "--calibration {value!r} is not one of {choices}",
    BackendName: "unknown backend {value!r}; choose one of {choices}",
    Target: "--target {value!r} is not one of {choices}",
    GateCheck: "--allow-missing {value!r} is not one of {choices}",
}


def parse(kind: type[C], value: str | C) -> C:
    """A member of `kind` from its spelling; UsageError (exit 2) naming the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        template = MESSAGES.get(kind, "{value!r} is not one of {choices}")
        raise UsageError(template.format(value=value, choices=", ".join(kind.values()))) from None


def parse_precisions(values: Iterable[str | Precision] | None) -> tuple[Precision, ...]:
    """Precisions in the order given, without repeats; `a,b` counts as two; none given: every precision."""
    if values is None:
        return tuple(Precision)
    names = [part.strip() for value in values for part in str(value).split(",") if part.strip()]
    if not names:
        raise UsageError(f"unknown precision '(none)'; choose from {', '.join(Precision.values())}")
    return tuple(dict.fromkeys(parse(Precision, name) for name in names))


def parse_targets(values: Iterable[str | Target] | None) -> tuple[Target, ...]:
    """Targets in the order given, without repeats; `a,b` counts as two; none given: plain TFLite only."""
    names = [part.strip() for value in values or () for part in str(value).split(",") if part.strip()]
    return tuple(dict.fromkeys(parse(Target, name) for name in names)) or (Target.TFLITE,)
