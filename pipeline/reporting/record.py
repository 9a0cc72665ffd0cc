"""The report as data: its configuration and the `Report` record that build makes and render writes out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..commits import now
from ..errors import UsageError
from ..measure.evaluate import DEFAULT_MAX_DROP
from .device_columns import DeviceColumn
from .recommend import ReportRow


@dataclass(frozen=True)
class ReportConfig:
    folder: Path
    max_drop: float = DEFAULT_MAX_DROP
    samples: int = 24
    data_path: Path | None = None
    data_dir: Path | None = None
    device: str | None = None  # recommend for this device of benchmark.json (its latency)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_drop <= 100.0:
            raise UsageError(f"--max-drop must be between 0 and 100 percentage points, got {self.max_drop}")
        if not 0 <= self.samples <= 200:
            raise UsageError(f"--samples must be between 0 and 200, got {self.samples}")


@dataclass
class Report:
    name: str
    model: str
    dataset: str
    keras_accuracy: float | None
    test_images: int | None
    max_drop: float
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
    drift_notes: list[str] = field(default_factory=list)  # the gate's resolution; why images change class
    runtime_notes: list[str] = field(default_factory=list)  # which runtime the recommendation needs; the legacy pick
    legacy_recommended: str | None = None  # the pick among variants tflite-runtime 2.14 runs
    quantization: dict[str, Any] | None = None  # report_quant.summary: calibration, worst layers, mixed, sweep
    devices: list[DeviceColumn] = field(default_factory=list)  # benchmark/evaluate --on HOST
    device: str | None = None  # the device the recommendation is for (report --device)

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
