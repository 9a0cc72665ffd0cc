"""How stages report progress without printing: they call a Reporter the caller provides.

The CLI passes a rich-based reporter; library callers and tests get the silent default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Task(Protocol):
    def advance(self, steps: int = 1) -> None: ...

    def update(self, completed: int, total: int | None = None, note: str = "") -> None: ...


class Reporter(Protocol):
    def status(self, message: str) -> None:
        """A one-line note: a stage started, a file was skipped, a fallback was taken."""

    def task(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Task]:
        """A unit of work with a known or unknown number of steps (a progress bar)."""


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

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield SilentTask()
