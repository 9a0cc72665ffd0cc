"""Errors edge_runtime raises: each carries one line a person can act on, and an exit code."""

from __future__ import annotations

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


class EdgeRuntimeError(Exception):
    """Base class: `str(error)` is a complete one-line message (what, where, how to fix)."""

    exit_code = FAILURE_EXIT_CODE


class UsageError(EdgeRuntimeError):
    """The command line or an argument is wrong (exit code 2)."""

    exit_code = USAGE_EXIT_CODE


class ModelError(EdgeRuntimeError):
    """A model file is missing, is not a TFLite model, or cannot run here."""


class RuntimeTooOldError(ModelError):
    """A valid model uses an operator version the installed interpreter is too old to run."""


class ImageError(EdgeRuntimeError):
    """An image file is missing, unreadable, truncated or too large."""


class LabelsError(EdgeRuntimeError):
    """A labels file is missing or does not fit the model's outputs."""


class MetadataError(EdgeRuntimeError):
    """A model folder's metadata.json is missing, corrupt, or from a newer schema."""


class BackendError(EdgeRuntimeError):
    """No TFLite interpreter could be imported."""
