"""Choices as the pipeline validates them: edge_runtime's str Enums, parsed once with one-line usage errors."""

from __future__ import annotations

from typing import TypeVar

from edge_runtime.choices import BackendName, Calibration, Choice, IoType, Precision, Resize, Route, Target

from .errors import UsageError

__all__ = [
    "BackendName",
    "Calibration",
    "Choice",
    "GateCheck",
    "IoType",
    "Precision",
    "Resize",
    "Route",
    "Target",
    "parse_choice",
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


def parse_choice(kind: type[C], value: str | C, name: str) -> C:
    """A member of `kind` from its spelling; UsageError (exit 2) naming the option and the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(kind.values())
        if kind is Precision:
            raise UsageError(f"unknown precision {value!r} for {name}; choose from {choices}") from None
        raise UsageError(f"{name} {value!r} is not one of {choices}") from None
