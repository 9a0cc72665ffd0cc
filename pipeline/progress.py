"""How stages report progress without printing: they call a Reporter the caller provides.

The CLI and the Python API (unless ``progress=False``) pass ``pipeline.output.display.RichReporter``; stages
called directly, and tests, get the silent default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol


class Task(Protocol):
    def advance(self, steps: int = 1) -> None: ...

    def update(self, completed: int, total: int | None = None, note: str = "") -> None: ...


class Reporter(Protocol):
    def status(self, message: str) -> None:
        """A one-line note: a stage started, a file was skipped, a fallback was taken."""

    def task(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Task]:
        """A unit of work with a known or unknown number of steps (a progress bar)."""

    def stage(self, name: str) -> None:
        """A stage begins (`train`, `convert`, ...): the CLI draws a rule."""

    def result(self, result: Any) -> None:
        """A stage's result (anything with ``table()``), to show as it finishes."""


class SilentTask:
    def advance(self, steps: int = 1) -> None:
        pass

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        pass


class SilentReporter:
    """Reports nothing; the default for library use."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def status(self, message: str) -> None:
        self.messages.append(message)

    def stage(self, name: str) -> None:
        pass

    def result(self, result: Any) -> None:
        pass

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield SilentTask()
