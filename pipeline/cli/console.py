"""Terminal output for the CLI: a rich progress reporter and the result tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
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
from rich.table import Table

from edge_runtime.model_folder import split_variant
from edge_runtime.text import printable

from ..conversion.stage import ConvertResult
from ..measure.benchmark import BenchmarkResult
from ..measure.evaluate import DriftResult
from ..progress import SilentTask
from ..reporting.build import Report, table_columns, table_rows
from ..reporting.device_columns import describe
from ..training.stage import TrainResult
from .markup import user


class _RichTask:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        fields: dict[str, Any] = {"completed": completed, "note": note}
        if total is not None:
            fields["total"] = total
        self._progress.update(self._task, **fields)


class RichReporter:
    """Progress bars and status lines on a rich console; one live display shared by all tasks."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._open = 0

    def status(self, message: str) -> None:
        self.console.print(f"  {printable(message)}", highlight=False, markup=False, soft_wrap=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Any]:
        if not self.console.is_terminal:
            # Logs and pipes get the status lines only; a bar there is just blank lines.
            yield SilentTask()
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
        task_id = progress.add_task(description, total=total, note="")
        self._open += 1
        try:
            yield _RichTask(progress, task_id)
        finally:
            progress.remove_task(task_id)
            self._open -= 1
            if self._open == 0:
                progress.stop()
                self._progress = None


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    return table


def train_summary(result: TrainResult) -> Table:
    table = Table(title=f"trained {user(result.name)}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    spec = result.input
    table.add_row(
        "test accuracy",
        f"{result.test_accuracy:.2%} (loss {result.test_loss:.4f}) on {result.sizes['test']:,} test images",
    )
    table.add_row(
        "model",
        f"{result.model}, {result.parameters:,} parameters, input {spec.height}x{spec.width}x{spec.channels} "
        f"{spec.color}",
    )
    sizes = result.sizes
    table.add_row(
        "epochs",
        f"{result.epochs_run} (best {result.best_epoch}), {sizes['train']:,} training / {sizes['validation']:,} "
        "validation images",
    )
    table.add_row("time", f"{result.seconds:.0f} s training")
    if result.skipped:
        table.add_row("skipped", f"{len(result.skipped)} unreadable files")
    table.add_row(
        "written",
        f"{user(result.folder)}/ (model.keras {result.model_bytes / 1024:,.0f} KB, labels.txt, history.json/.png, "
        "metadata.json)",
    )
    return table


def convert_table(result: ConvertResult) -> Table:
    table = _table(
        f"converted {user(result.folder)} in {result.seconds:.1f} s (files model_<variant>.tflite)",
        ["variant", "size KB", "x float32", "input", "output", "min runtime", "route"],
    )
    # each family against its own float32 (mediapipe-int8 against mediapipe-float32), else the plain one
    floats = {split_variant(v.precision)[0]: v.bytes for v in result.variants if v.precision.endswith("float32")}

    def tensor(info: Any) -> str:
        return info.dtype + (f" (scale {info.scale:.4g}, zp {info.zero_point})" if info.scale else "")

    for v in result.variants:
        base = floats.get(split_variant(v.precision)[0], floats.get("tflite"))
        ratio = f"{v.bytes / base:.2f}x" if base else "-"
        table.add_row(
            v.precision,
            f"{v.bytes / 1024:,.1f}",
            ratio,
            tensor(v.input),
            tensor(v.output),
            v.min_runtime or "?",
            v.route,
        )
    for line in result.skipped:
        table.caption = (table.caption + "\n" if table.caption else "") + user(line)
    return table


def drift_table(result: DriftResult) -> Table:
    table = _table(
        f"accuracy drift on {result.test_images:,} test images (Keras {result.keras_accuracy:.2%}); budget "
        f"{result.max_drop:g} pp",
        ["variant", "accuracy", "vs Keras (pp)", "agreement", "mean |dp|", "worst class (pp)", "images/s", "verdict"],
    )
    for v in result.variants:
        worst = v.per_class[0] if v.per_class else None
        table.add_row(
            v.precision,
            f"{v.accuracy:.2%}",
            f"{v.change_pp:+.2f}",
            f"{v.agreement:.2%}",
            f"{v.mean_abs_diff:.5f}",
            f"{user(worst.label)} {worst.change_pp:+.1f}" if worst else "-",
            f"{v.images_per_s:,.0f}",
            "[green]pass[/green]" if v.passed else "[red]FAIL[/red]",
        )
    return table


def disagreement_notes(result: DriftResult) -> list[str]:
    """One line per variant that changes the class of some images: borderline calls or not."""
    return result.disagreements()


def benchmark_table(result: BenchmarkResult) -> Table:
    threads = result.settings["threads"]
    cores = result.machine.get("cores") or 0
    over = {t: f" ({t} threads on {cores} cores)" if cores and t > cores else "" for t in threads}
    columns = (
        ["variant", "size KB"]
        + [f"p50/p99 ms @{t}t{over[t]}" for t in threads]
        + ["images/s @" + str(threads[0]) + "t", "peak MB"]
    )
    table = _table(
        user(f"latency ({result.machine['cpu']}, {result.machine['cores']} cores, {result.machine['interpreter']})"),
        columns,
    )
    for v in result.variants:
        cells = [v.precision, f"{v.bytes / 1024:,.1f}"]
        cells += [f"{v.latency[t].p50_ms:.3f} / {v.latency[t].p99_ms:.3f}" for t in threads]
        cells += [
            f"{v.latency[threads[0]].images_per_second:,.0f}",
            f"{v.peak_memory_mb:.1f}" if v.peak_memory_mb else "-",
        ]
        table.add_row(*cells)
    return table


def report_table(report: Report) -> Table:
    """The report's table without p99 columns, to fit a terminal (report.md has them all)."""
    columns = table_columns(report)
    keep = [i for i, column in enumerate(columns) if not column.startswith("p99")]
    table = _table(
        f"{user(report.name)}: variants side by side (* recommended; p99 in report.md)", [columns[i] for i in keep]
    )
    for cells in table_rows(report):
        table.add_row(*(cells[i] for i in keep))
    return table


def deploy_summary(result: Any) -> str:
    state = "copied and verified" if result.copied else "already there"
    return (
        f"{result.device}: {result.files} files ({result.bytes / 1024:,.0f} KB) {state} in {result.directory}\n"
        f"device: {describe(result.facts)}"
    )


def device_benchmark_table(result: Any) -> Table:
    threads = result.settings["threads"]
    table = _table(
        user(f"latency on {result.name}: {describe(result.facts)}"),
        ["variant", *[f"p50/p99 ms @{t}t" for t in threads], "peak MB"],
    )
    for precision, row in result.variants.items():
        if "error" in row:
            table.add_row(precision, *(["-"] * len(threads)), f"cannot run: {user(row['error'])}")
            continue
        timed = row.get("threads", {})
        cells = [
            f"{timed[str(t)]['p50_ms']:.3f} / {timed[str(t)]['p99_ms']:.3f}" if str(t) in timed else "-"
            for t in threads
        ]
        memory = row.get("peak_memory_mb")
        table.add_row(precision, *cells, f"{memory:.1f}" if memory else "-")
    return table


def device_drift_table(name: str, entry: dict[str, Any]) -> Table:
    title = user(f"accuracy on {name} ({entry['samples']:,} test images; Keras {entry['keras_accuracy']:.2%})")
    table = _table(title, ["variant", "accuracy", "agreement with Keras", "same class as here"])
    for precision, row in entry["variants"].items():
        if "error" in row:
            table.add_row(precision, "-", "-", f"cannot run: {user(row['error'])}")
        else:
            table.add_row(
                precision, f"{row['accuracy']:.2%}", f"{row['agreement']:.2%}", f"{row['agreement_with_here']:.2%}"
            )
    return table
