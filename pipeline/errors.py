"""Errors the pipeline raises. Each message is one line: what went wrong, where, and what to do.

`PipelineError` is the root of every error of both packages (edge_runtime's included: `ImageError`,
`ModelError`, ...), so one `except pipeline.PipelineError` catches all a notebook can meet; `UsageError` is
the one class both raise for a wrong option or argument (exit code 2).
"""

from __future__ import annotations

from edge_runtime.errors import EdgePipelineError, UsageError

PipelineError = EdgePipelineError  # a failure the user can act on (exit code 1); the root of both packages' errors
__all__ = ["ConversionError", "DataError", "FolderError", "GateFailed", "Interrupted", "PipelineError",
           "SourceError", "TrainingFailed", "UnsafeTarget", "UsageError", "cause"]  # fmt: skip


class DataError(PipelineError):
    """A dataset is missing, empty, or has too few usable images."""


class FolderError(PipelineError):
    """A model folder is missing, damaged, or belongs to a different model."""


class ConversionError(PipelineError):
    """TensorFlow could not convert the model to TFLite."""


class SourceError(PipelineError):
    """A model to import cannot be used as it is (its layers, inputs or outputs, or it did not measure up)."""


class UnsafeTarget(PipelineError):
    """A deploy target that could destroy what is there: refused before anything is sent (exit 1)."""


class TrainingFailed(PipelineError):
    """Training ended near chance level; `run` stops there instead of converting a model that did not learn."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class GateFailed(PipelineError):
    """A quality gate (e.g. --max-drop) was not met; `result` holds what was measured, when there is one."""

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class Interrupted(PipelineError):
    """Ctrl-C or SIGTERM arrived; the folder keeps its last complete files."""

    exit_code = 130


def cause(error: BaseException) -> str:
    """The whole reason of an error and of what caused it, on one line (never cut mid-word).

    Keras' download helper raises a bare Exception whose message names the URL; the network's
    own error (e.g. "[Errno -2] Name or service not known") is in its cause chain.
    """
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 4:
        text = " ".join(str(current).split()) or type(current).__name__
        if not any(text in part for part in parts):
            parts.append(f"{type(current).__name__}: {text}" if current is not error else text)
        current = current.__cause__ or current.__context__
    return "; caused by ".join(parts)
