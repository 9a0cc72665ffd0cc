"""One model folder's results as `compare` needs them: a row per variant, the test images' identity, predictions.

Everything comes from the folder's own verified files (metadata.json, drift.json, predictions.json,
benchmark.json); a result file that is missing leaves its columns empty, and numbers of the wrong type in
a hostile file are read as missing, never as a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.errors import EdgeRuntimeError

from ..errors import FolderError
from ..folder import BENCHMARK_JSON, DRIFT_JSON, PREDICTIONS_JSON, FolderStore, Metadata
from ..store.commits import read_results_json

EMULATED = "emulated-instructions"


def number(value: Any) -> float | None:
    """A finite number from a result file, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class VariantRow:
    """One variant of one folder: what the comparison table shows."""

    folder: str
    variant: str
    size_kb: float
    sha256: str
    accuracy: float | None = None  # 0..1, on the folder's test images
    agreement: float | None = None  # with its own Keras model
    p50_ms: dict[int, float] = field(default_factory=dict)  # by thread count, this folder's benchmark machine
    emulated: dict[str, float] = field(default_factory=dict)  # "cortex-a76/litert" -> instructions per image
    recommended: bool = False


@dataclass
class FolderResults:
    """A folder's rows, and what says whether its numbers can stand beside another folder's."""

    path: Path
    name: str
    model: str
    recommended: str | None
    rows: list[VariantRow]
    fingerprint: str | None = None  # of the test images its evaluation used
    test_images: int = 0
    machine: str | None = None  # the CPU its latencies were measured on
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # "labels", "keras", each variant: top-1
    seed: Any = None

    def row(self, variant: str) -> VariantRow | None:
        return next((r for r in self.rows if r.variant == variant), None)


def _read(store: FolderStore, metadata: Metadata, name: str) -> dict[str, Any] | None:
    if name not in metadata.files:
        return None
    try:
        return read_results_json(store.verified(name, metadata), name)
    except (EdgeRuntimeError, FolderError) as error:
        raise FolderError(f"{store.path}: {error}") from None


def _emulated(bench: dict[str, Any], row: VariantRow) -> None:
    devices = bench.get("devices") if isinstance(bench.get("devices"), dict) else {}
    for entry in devices.values():
        if not isinstance(entry, dict) or entry.get("kind") != EMULATED or not isinstance(entry.get("settings"), dict):
            continue
        cpu = str(entry["settings"].get("cpu", "?"))
        for interpreter, found in dict(entry.get("interpreters") or {}).items():
            variant = dict(found.get("variants") or {}).get(row.variant) if isinstance(found, dict) else None
            count = number(variant.get("instructions")) if isinstance(variant, dict) else None
            if count is not None and variant.get("sha256") == row.sha256:  # counts of this very file only
                row.emulated[f"{cpu}/{interpreter}"] = count


def _timings(bench: dict[str, Any], row: VariantRow) -> None:
    timing = dict(bench.get("variants") or {}).get(row.variant)
    if not isinstance(timing, dict) or timing.get("sha256") != row.sha256:
        return
    for threads, stats in dict(timing.get("threads") or {}).items():
        p50 = number(stats.get("p50_ms")) if isinstance(stats, dict) else None
        if p50 is not None and str(threads).isdigit():
            row.p50_ms[int(threads)] = p50


def _predictions(data: dict[str, Any] | None, fingerprint: str | None, size: int) -> dict[str, np.ndarray]:
    """Top-1 per test image, when predictions.json is of the evaluation drift.json records."""
    if not data or data.get("test_fingerprint") != fingerprint:
        return {}
    found: dict[str, np.ndarray] = {}
    columns = {"labels": data.get("labels"), "keras": data.get("keras"), **dict(data.get("variants") or {})}
    for key, values in columns.items():
        if isinstance(values, list) and len(values) == size and all(type(v) is int for v in values):
            found[str(key)] = np.asarray(values, dtype=np.int64)
    return found


def load(path: Path, name: str) -> FolderResults:
    """Read a folder for `compare` (FolderError, one line, when it is not a readable model folder)."""
    store = FolderStore(path)
    metadata = store.load()
    drift = _read(store, metadata, DRIFT_JSON) or {}
    bench = _read(store, metadata, BENCHMARK_JSON) or {}
    drifts = dict(drift.get("variants") or {})
    rows = []
    for variant, record in metadata.variants.items():
        row = VariantRow(name, variant, record.bytes / 1024, record.sha256, recommended=variant == metadata.recommended)
        measured = drifts.get(variant)
        if isinstance(measured, dict) and measured.get("sha256") == record.sha256:
            row.accuracy, row.agreement = number(measured.get("accuracy")), number(measured.get("agreement"))
        _timings(bench, row)
        _emulated(bench, row)
        rows.append(row)
    fingerprint = drift.get("test_fingerprint") if isinstance(drift.get("test_fingerprint"), str) else None
    size = int(number(drift.get("test_images")) or 0)
    machine = bench.get("machine", {}).get("cpu") if isinstance(bench.get("machine"), dict) else None
    return FolderResults(
        path=store.path,
        name=name,
        model=str(metadata.training.get("model")),
        recommended=metadata.recommended,
        rows=rows,
        fingerprint=fingerprint,
        test_images=size,
        machine=str(machine) if machine else None,
        predictions=_predictions(_read(store, metadata, PREDICTIONS_JSON), fingerprint, size),
    )


def display_names(paths: list[Path]) -> list[str]:
    """Each folder's name, made unique with its parent where two share one (runs/a/cnn, runs/b/cnn)."""
    names = [Path(p).resolve().name for p in paths]
    return [
        f"{Path(p).resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)
    ]
