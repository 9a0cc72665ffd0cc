"""Results and progress on a rich console, in a terminal or a notebook: the presentation edge of the library.

`RichReporter` is the Reporter the CLI passes, and the one the Python API uses unless told
``progress=False``: a progress bar per task (in terminals; logs and pipes get the status lines only),
a rule per stage, and each stage's result table. Tables come from the results' ``table()``
(``pipeline.output.tables``); every cell is shown as text, never parsed as rich markup.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from edge_runtime.text import printable

from ..progress import SilentTask
from .tables import Table

STYLES = {"FAIL": "red", "NO": "red", "pass": "green", "yes": "green"}


def console(stderr: bool = False) -> Console:
    """A console for results: 160 columns in logs and pipes, where rich would squeeze tables into 80."""
    made = Console(stderr=stderr)
    if not made.is_terminal and not made.is_jupyter and not os.environ.get("COLUMNS"):
        made.width = 160
    return made


def plain(value: object, style: str | None = None) -> Text:
    """Text exactly as given (control characters escaped, `[...]` not markup)."""
    return Text(printable(value), style=style or "")


def rich_table(table: Table) -> RichTable:
    shown = RichTable(title=plain(table.title), title_justify="left", header_style="bold", show_header=table.header)
    for index, column in enumerate(table.columns):
        shown.add_column(plain(column), justify="left" if index == 0 else "right", no_wrap=index == 0)
    for row in table.rows:
        shown.add_row(
            *(
                plain(cell, STYLES.get(cell, "bold" if not table.header and i == 0 else None))
                for i, cell in enumerate(row)
            )
        )
    return shown


def show(target: Console, result: Any) -> None:
    """A result's table, then its notes (warnings in red)."""
    table = result.table()
    target.print(rich_table(table))
    for note in table.notes:
        style = (
            "bold red" if note.startswith(("warning:", "accuracy gate failed", "Do not ship", "No variant")) else "dim"
        )
        target.print(plain(note, style), soft_wrap=True)


class _RichTask:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        fields: dict[str, Any] = {"completed": completed, "note": escape(printable(note))}
        if total is not None:
            fields["total"] = total
        self._progress.update(self._task, **fields)


class RichReporter:
    """Progress bars, status lines, stage rules and result tables on a rich console; one live display."""

    def __init__(self, target: Console | None = None) -> None:
        self.console = target or console()
        self._progress: Progress | None = None
        self._open = 0

    def status(self, message: str) -> None:
        self.console.print(plain(f"  {message}"), highlight=False, soft_wrap=True)

    def stage(self, name: str) -> None:
        self.console.rule(plain(name, "bold"))

    def result(self, result: Any) -> None:
        show(self.console, result)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Any]:
        if not (self.console.is_terminal or self.console.is_jupyter):
            yield SilentTask()  # logs and pipes get the status lines only; a bar there is just blank lines
            return
        if self._progress is None:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        progress = self._progress
        # the columns are rich markup templates: what fills them is escaped, so `[red]` in a name stays text
        task_id = progress.add_task(escape(printable(description)), total=total, note="")
        self._open += 1
        try:
            yield _RichTask(progress, task_id)
        finally:
            progress.remove_task(task_id)
            self._open -= 1
            if self._open == 0:
                progress.stop()
                self._progress = None
