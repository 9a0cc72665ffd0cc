"""Errors edge_runtime raises: each carries one line a person can act on, and an exit code."""

from __future__ import annotations

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


class EdgePipelineError(Exception):
    """The root of every error edge_runtime and edge-pipeline raise (`pipeline.PipelineError` is this class): one
    `except` catches them all. `str(error)` is a complete one-line message (what, where, how to fix)."""

    exit_code = FAILURE_EXIT_CODE


class EdgeRuntimeError(EdgePipelineError):
    """What the device side raises."""


class UsageError(EdgeRuntimeError):
    """The command line or an argument is wrong (exit code 2); both packages raise this one class."""

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
