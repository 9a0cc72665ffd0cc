"""Choices as the pipeline validates them: edge_runtime's str Enums, parsed once with one-line usage errors."""

from __future__ import annotations

from typing import TypeVar

from edge_runtime.choices import BackendName, Calibration, Choice, IoType, Precision, Resize, Route, Target

from .errors import UsageError

__all__ = ["BackendName", "Calibration", "Choice", "IoType", "Precision", "Resize", "Route", "Target", "parse_choice"]
C = TypeVar("C", bound=Choice)


def parse_choice(kind: type[C], value: str | C, name: str) -> C:
    """A member of `kind` from its spelling; UsageError (exit 2) naming the option and the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(kind.values())
        if kind is Precision:
            raise UsageError(f"unknown precision {value!r} for {name}; choose from {choices}") from None
        raise UsageError(f"{name} {value!r} is not one of {choices}") from None
