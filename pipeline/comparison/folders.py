"""One model folder as `compare` needs it: a row per variant, with what can be known of each and how.

Sizes come from the files themselves (the bytes edge_runtime reads and checks against metadata.json's
sha256); accuracy and top-1 predictions are measured here (`measured.py`), never read from predictions.json.
What only a record can say stands only when the record names that very file's sha256: latency and emulated
instruction counts from benchmark.json, agreement with Keras from drift.json (and only on the test images
measured here, by fingerprint). Numbers of the wrong type in a hostile file are read as missing, never as a
crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.errors import EdgeRuntimeError

from ..errors import DataError, FolderError
from ..folder import BENCHMARK_JSON, DRIFT_JSON, FolderStore, Metadata
from ..progress import Reporter
from ..store.commits import read_results_json
from .measured import Cache, TestImages, checked_bytes, predictor, test_images, top1

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
    size_kb: float  # of the file itself
    sha256: str
    accuracy: float | None = None  # 0..1, measured here on the folder's test images
    agreement: float | None = None  # with its own Keras model: drift.json's, for this sha256 and these test images
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
    store: FolderStore
    metadata: Metadata
    machine: str | None = None  # the CPU its latencies were measured on
    images: TestImages | None = None  # its test images as loaded here (None: not loaded, `unmeasured` says why)
    unmeasured: str | None = None  # why no accuracy could be measured
    failures: dict[str, str] = field(default_factory=dict)  # variant -> why it could not be run on the images
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # "labels", and each measured variant: top-1
    drift: dict[str, Any] = field(default_factory=dict)  # drift.json, for the Keras agreement it records

    @property
    def fingerprint(self) -> str | None:
        """Of the test images measured here (as `evaluate` records it)."""
        return self.images.fingerprint if self.images is not None else None

    @property
    def test_images(self) -> int:
        return len(self.images.labels) if self.images is not None else 0

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
        found_interpreters = entry.get("interpreters")
        for interpreter, found in dict(found_interpreters if isinstance(found_interpreters, dict) else {}).items():
            variants = found.get("variants") if isinstance(found, dict) else None
            variant = variants.get(row.variant) if isinstance(variants, dict) else None
            count = number(variant.get("instructions")) if isinstance(variant, dict) else None
            if count is not None and variant.get("sha256") == row.sha256:  # counts of this very file only
                row.emulated[f"{cpu}/{interpreter}"] = count


def _timings(bench: dict[str, Any], row: VariantRow) -> None:
    variants = bench.get("variants")
    timing = variants.get(row.variant) if isinstance(variants, dict) else None
    if not isinstance(timing, dict) or timing.get("sha256") != row.sha256:
        return
    if not isinstance(timing.get("threads"), dict):
        return
    for threads, stats in timing["threads"].items():
        p50 = number(stats.get("p50_ms")) if isinstance(stats, dict) else None
        if p50 is not None and str(threads).isdigit():
            row.p50_ms[int(threads)] = p50


def keras_agreement(folder: FolderResults) -> None:
    """Each measured variant's agreement with its Keras model, from drift.json: only for the very file (sha256)
    and the very test images measured here (fingerprint); else left empty."""
    if folder.images is None or folder.drift.get("test_fingerprint") != folder.images.fingerprint:
        return
    variants = folder.drift.get("variants")
    for row in folder.rows:
        measured = variants.get(row.variant) if isinstance(variants, dict) else None
        if row.accuracy is not None and isinstance(measured, dict) and measured.get("sha256") == row.sha256:
            row.agreement = number(measured.get("agreement"))


def measure(folder: FolderResults, variants: list[str], cache: Cache, reporter: Reporter, what: str) -> None:
    """Run `variants` of the folder on its test images: their top-1 predictions and accuracy, measured here.

    What cannot be measured is said: `unmeasured` (no test images), `failures` (a variant that cannot run)."""
    try:
        images = folder.images = test_images(folder.store, folder.metadata, cache.images)
    except DataError as error:
        folder.unmeasured = str(error)
        return
    predictors, keys, found, names = {}, {}, {}, {}
    for variant in variants:
        try:
            made = predictor(folder.store, folder.metadata, variant)
        except FolderError as error:
            folder.failures[variant] = str(error)
            continue
        keys[variant], names[variant] = cache.run_key(made.content, made.spec, images), made.labels
        if keys[variant] in cache.top1:
            found[variant] = cache.top1[keys[variant]]
        else:
            predictors[variant] = made
    if predictors:
        with reporter.task(f"measuring {what} on its test images", total=len(images.labels)) as task:
            measured, failed = top1(predictors, images, task.update)
        folder.failures.update(failed)
        found.update(measured)
        cache.top1.update({keys[variant]: top for variant, top in measured.items()})
    labels = images.labels
    found = {variant: images.named(top, names[variant]) for variant, top in found.items()}  # by the names it answers
    folder.predictions = {"labels": labels, **found}
    for row in folder.rows:
        if row.variant in found:
            row.accuracy = float((found[row.variant] == labels).mean())
    keras_agreement(folder)


def load(path: Path, name: str) -> FolderResults:
    """Read a folder for `compare` (FolderError, one line, when it is not a readable model folder or a file does
    not match metadata.json)."""
    store = FolderStore(path)
    metadata = store.load()
    drift = _read(store, metadata, DRIFT_JSON) or {}
    bench = _read(store, metadata, BENCHMARK_JSON) or {}
    rows = []
    for variant, record in metadata.variants.items():
        size = len(checked_bytes(store, metadata, variant))
        row = VariantRow(name, variant, size / 1024, record.sha256, recommended=variant == metadata.recommended)
        _timings(bench, row)
        _emulated(bench, row)
        rows.append(row)
    machine = bench.get("machine", {}).get("cpu") if isinstance(bench.get("machine"), dict) else None
    return FolderResults(
        path=store.path,
        name=name,
        model=str(metadata.training.get("model")),
        recommended=metadata.recommended,
        rows=rows,
        store=store,
        metadata=metadata,
        machine=str(machine) if machine else None,
        drift=drift,
    )


def display_names(paths: list[Path]) -> list[str]:
    """Each folder's name, made unique with its parent where two share one (runs/a/cnn, runs/b/cnn)."""
    names = [Path(p).resolve().name for p in paths]
    return [
        f"{Path(p).resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)
    ]
