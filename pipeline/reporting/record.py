"""The report as data: its configuration and the `Report` record that build makes and render writes out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..measure.intervals import interval_text
from ..output.tables import Shown, Table
from ..store.commits import now
from .device_columns import DeviceColumn
from .emulated_section import EmulatedColumn
from .recommend import ReportRow


@dataclass(frozen=True)
class ReportConfig:
    folder: Path
    max_drop: float | None = None  # None: the budget drift.json's evaluation used
    samples: int = 24
    data_path: Path | None = None
    data_dir: Path | None = None
    device: str | None = None  # recommend for this device of benchmark.json (its latency)
    as_default: bool = False  # with `device`: its pick also becomes the folder's default


@dataclass(repr=False)
class Report(Shown):
    """Everything report.md says, as data: the variant rows, the recommendation and why; prints as a table."""

    name: str
    model: str
    dataset: str
    keras_accuracy: float | None
    test_images: int | None
    max_drop: float  # the budget the rows are judged by: --max-drop, else the one `evaluate` used
    threads: list[int]
    rows: list[ReportRow]
    recommended: str | None
    recommendation: str
    training: dict[str, Any]
    machine: dict[str, Any] | None
    benchmark_settings: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    worst_classes: list[dict[str, Any]] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    drift_notes: list[str] = field(default_factory=list)  # why images change class (only when some do)
    budget_notes: list[str] = field(default_factory=list)  # the gate's resolution, evaluate's budget, uncertainty
    runtime_notes: list[str] = field(default_factory=list)  # which runtime the recommendation needs; the legacy pick
    legacy_recommended: str | None = None  # the pick among variants tflite-runtime 2.14 runs
    quantization: dict[str, Any] | None = None  # report_quant.summary: calibration, worst layers, mixed, sweep
    devices: list[DeviceColumn] = field(default_factory=list)  # benchmark/evaluate --on HOST
    device: str | None = None  # the device the recommendation is for (report --device)
    emulated: list[EmulatedColumn] = field(default_factory=list)  # benchmark --emulate: instructions per image
    other_recommendations: list[str] = field(default_factory=list)  # the other machines' picks, each says which
    device_key: str | None = None  # the device the pick is recorded for in metadata.json (report --device)
    host_recommended: str | None = None  # the pick by this machine's latency, whatever --device says

    def summary(self) -> str:
        return f"report of {self.name}: {self.recommendation[:100]}"

    def table(self) -> Table:
        """The variant table without p99 columns, to fit a terminal (report.md has them all)."""
        columns = table_columns(self)
        keep = [i for i, column in enumerate(columns) if not column.startswith("p99")]
        rows = [[cells[i] for i in keep] for cells in table_rows(self)]
        title = f"{self.name}: variants side by side (* recommended; p99 in report.md)"
        notes = [self.recommendation, *self.other_recommendations, *self.runtime_notes]
        return Table(title, [columns[i] for i in keep], rows, notes)

    @property
    def reference_threads(self) -> int | None:
        return self.threads[0] if self.threads else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [
            {
                **asdict(row),
                "size_kb": row.size_kb,
                "p50_ms": {str(k): v for k, v in row.p50_ms.items()},
                "p99_ms": {str(k): v for k, v in row.p99_ms.items()},
                "speedup": {str(k): v for k, v in row.speedup.items()},
            }
            for row in self.rows
        ]
        return {"created_at": now(), **data}


def _fmt(value: float | None, pattern: str, missing: str = "-") -> str:
    return missing if value is None else format(value, pattern)


def has_float32(report: Report) -> bool:
    return any(row.precision == "float32" for row in report.rows)


def table_columns(report: Report) -> list[str]:
    """Columns of the variant table; the float32 comparisons only when there is a float32 variant."""
    relative = has_float32(report)
    columns = [
        "variant",
        "size KB",
        *(["x float32"] if relative else []),
        "min runtime",
        "accuracy",
        as_reference("vs Keras (pp)", report.training),
        "agreement",
    ]
    cores = int((report.machine or {}).get("cores") or 0)
    for t in report.threads:
        over = f" ({t} threads on {cores} cores)" if cores and t > cores else ""
        columns += [f"p50 ms @{t}t{over}", f"p99 ms @{t}t", *([f"speed-up @{t}t"] if relative else [])]
    return [*columns, "peak MB", "within budget"]


def table_rows(report: Report) -> list[list[str]]:
    """The variant table as text cells (shared by the terminal, markdown and CSV)."""
    relative = has_float32(report)
    lines = []
    for row in report.rows:
        ratio = [_fmt(row.size_ratio, ".2f") + ("x" if row.size_ratio is not None else "")] if relative else []
        cells = [
            row.precision + (" *" if row.precision == report.recommended else ""),
            f"{row.size_kb:,.1f}",
            *ratio,
            row.min_runtime or "-",
            _fmt(row.accuracy, ".2%") + interval_text(row.accuracy_interval),
            _fmt(row.change_pp, "+.2f") + (" (n.s.)" if row.within_noise else ""),
            _fmt(row.agreement, ".2%") + interval_text(row.agreement_interval),
        ]
        for t in report.threads:
            speedup = [_fmt(row.speedup.get(t), ".2f", "-") + ("x" if t in row.speedup else "")] if relative else []
            cells += [_fmt(row.p50_ms.get(t), ".3f"), _fmt(row.p99_ms.get(t), ".3f"), *speedup]
        cells += [_fmt(row.peak_memory_mb, ".1f"), {True: "yes", False: "NO", None: "-"}[row.within_budget]]
        lines.append(cells)
    return lines


def as_reference(text: str, training: dict[str, Any]) -> str:
    """The report's prose says "Keras" for what variants are measured against; for an imported .tflite that is
    the source (`training.reference`, e.g. "source (tflite)"), in report.md and on the terminal alike."""
    reference = training.get("reference")  # untrusted: only a string replaces it (render escapes it)
    return text.replace("Keras", reference) if isinstance(reference, str) and reference != "Keras" else text
