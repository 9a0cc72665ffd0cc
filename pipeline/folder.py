"""The model folder: its layout, the metadata.json schema, and safe writes. Every stage asks here.

Layout of ``models/<name>/``::

    model.keras                 the trained Keras model
    labels.txt                  one label a line
    history.json, history.png   loss and accuracy per epoch
    model_<precision>.tflite    float32, float16, dynamic, int8, mixed (after `convert`)
    model_mediapipe-<p>.tflite  float32, float16, int8 for MediaPipe (after `convert --target mediapipe`)
    drift.json                  accuracy drift of each variant (after `evaluate`)
    predictions.json            each test image's label and top-1 of Keras and every variant (after `evaluate`)
    benchmark.json              latency of each variant (after `benchmark`)
    report.md/.json/.csv, *.png the report (after `report`)
    metadata.json               written last; its checksums verify the files above
    checkpoint.npz              an unfinished training's state after its last epoch (gone when it finishes)

Writes go to a hidden temporary file in the same folder and are renamed into place, and a
stage's files are committed together with Ctrl-C deferred, so an interrupted stage leaves
the folder as it was.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_runtime import safe_files
from edge_runtime.choices import Precision
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.folder import reader as layout
from edge_runtime.folder.reader import (
    FolderMetadata,
    TensorQuantization,
    VariantRecord,
    sha256_file,
    split_variant,
    variant_filename,
)
from edge_runtime.folder.records import FILE_NAME

from .errors import FolderError
from .store import commits

SCHEMA_VERSION = layout.SCHEMA_VERSION
KERAS_FILE = layout.KERAS_FILE
LABELS_FILE = layout.LABELS_FILE
METADATA_FILE = layout.METADATA_FILE
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
SPLIT_JSON = "split.json"  # image folders: which file went to train, validation and test
DRIFT_JSON = "drift.json"
PREDICTIONS_JSON = "predictions.json"  # each test image's label and every variant's top-1 (what `compare` pairs)
QUANTIZATION_JSON = "quantization.json"  # per-layer int8 error, the mixed search, the calibration sweep
BENCHMARK_JSON = "benchmark.json"
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
TRADEOFF_PNG = "tradeoff.png"
CONFUSION_PNG = "confusion.png"
SAMPLES_PNG = "samples.png"
QUANTIZATION_PNG = "quantization.png"  # per-layer signal-to-noise of the int8 variant
CALIBRATION_PNG = "calibration.png"  # the calibration sweep
PRECISIONS = Precision.values()  # every precision, in the order folders and reports list them
VARIANTS = layout.VARIANT_NAMES  # every variant of every target, in that order
# Files made from model.keras: a new training run makes them stale, so it removes them.
DERIVED_FILES = (
    *(variant_filename(p) for p in VARIANTS),
    DRIFT_JSON,
    PREDICTIONS_JSON,
    QUANTIZATION_JSON,
    BENCHMARK_JSON,
    REPORT_MD,
    REPORT_JSON,
    REPORT_CSV,
    TRADEOFF_PNG,
    CONFUSION_PNG,
    SAMPLES_PNG,
    QUANTIZATION_PNG,
    CALIBRATION_PNG,
)
CHECKPOINT_FILE = "checkpoint.npz"  # written and read by pipeline.training.checkpoint only
LOCK_FILE = commits.LOCK_FILE
MB = commits.MB
MODEL_FILES = (".keras", ".h5", ".tflite")  # what `edge-pipeline import` takes: named when one is given as a folder
DISTRIBUTIONS = ("edge-pipeline", "tensorflow", "keras", "ai-edge-litert", "numpy", "pillow")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a model, without importing them."""
    versions = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


now = commits.now
to_json = commits.to_json
atomic_path = commits.atomic_path
atomic_write_text = commits.atomic_write_text
atomic_write_json = commits.atomic_write_json
Transaction = commits.Transaction


# --- metadata --------------------------------------------------------------------------------


# The records are edge_runtime's (the one parser of metadata.json); these names are the pipeline's.
TensorInfo = TensorQuantization
VariantInfo = VariantRecord
Metadata = FolderMetadata


def new_metadata(**fields: Any) -> Metadata:
    """A fresh metadata.json record, stamped with the time and the library versions that made it."""
    return Metadata(**fields, created_at=now(), updated_at=now(), versions=library_versions())


def model_identity(model: str | None, dataset: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs 'the same model': architecture and data, not hyper-parameters."""
    return {"model": model, "dataset": dataset.get("name"), "path": dataset.get("path")}


def file_record(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


# --- the folder -------------------------------------------------------------------------------


class FolderStore:
    """A model folder on disk: paths, metadata, checksums and transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FolderStore({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def keras_path(self) -> Path:
        return self.path / KERAS_FILE

    @property
    def metadata_path(self) -> Path:
        return self.path / METADATA_FILE

    def variant_path(self, precision: str) -> Path:
        return self.path / variant_filename(precision)

    def has_metadata(self) -> bool:
        return self.metadata_path.is_file()

    def load(self) -> Metadata:
        """Read and check metadata.json; every problem is a one-line FolderError."""
        self._check_exists()
        if not self.has_metadata():
            imported = " (or, for a model you already have, `edge-pipeline import MODEL_FILE --output {0}`)"
            raise FolderError(
                f"{self.path}: no metadata.json, so this is not a finished model folder; run `edge-pipeline train "
                f"--output {self.path}`" + imported.format(self.path)
            )
        try:
            return layout.load_metadata(self.path)
        except EdgeRuntimeError as error:
            raise FolderError(str(error)) from None

    def _check_exists(self) -> None:
        if not self.path.exists():
            raise FolderError(
                f"{self.path}: no such model folder; train one with `edge-pipeline train --output {self.path}`"
            )
        if not self.path.is_dir():
            also = (
                f"; to use it: edge-pipeline import {self.path} --data DIR" if self.path.suffix in MODEL_FILES else ""
            )
            raise FolderError(f"{self.path}: is a file, not a model folder{also}")

    def verified(self, name: str, metadata: Metadata) -> Path:
        """Path of one of the folder's own files after checking it: a regular file inside the folder, whose
        sha256 matches metadata.json (every file metadata.json records is checked; others are refused)."""
        record: dict[str, Any] | None = metadata.files.get(name)
        if record is None:
            record = next(({"sha256": v.sha256} for v in metadata.variants.values() if v.file == name), None)
        if not FILE_NAME.match(name):
            raise FolderError(f"{self.path}: {name!r} is not a file name a model folder may hold")
        try:
            path = safe_files.inside(self.path, name, "file", FolderError)
            descriptor = safe_files.open_regular(path, "file", FolderError)
        except FolderError as error:
            if "not found" not in str(error):
                raise
            raise FolderError(
                f"{self.path / name}: missing; metadata.json lists it, so the folder is incomplete: re-run the stage "
                "that writes it"
            ) from None
        os.close(descriptor)
        if record and sha256_file(path) != record["sha256"]:
            raise FolderError(
                f"{path}: does not match its sha256 in metadata.json (damaged or replaced); re-run the stage that "
                "writes it"
            )
        return path

    def verified_variant(self, precision: str, metadata: Metadata) -> Path:
        if precision not in metadata.variants:
            raise FolderError(
                f"{self.path}: has no {precision} variant; run `edge-pipeline convert {self.path} --precision "
                f"{precision}`"
            )
        return self.verified(metadata.variants[precision].file, metadata)

    def verified_variants(self, metadata: Metadata, precisions: tuple[str, ...] | None, stage: str) -> dict[str, Path]:
        """The requested variants in VARIANTS order, each checked against its sha256.

        None: every variant in the folder; precisions select those of each target (int8: int8, mediapipe-int8).
        """
        if precisions is None:
            chosen = [n for n in VARIANTS if n in metadata.variants]
        else:
            chosen = [
                n for n in VARIANTS if split_variant(n)[1] in precisions and (n in precisions or n in metadata.variants)
            ]
        if not chosen:
            raise FolderError(
                f"{self.path}: has no TFLite variants to {stage}; run `edge-pipeline convert {self.path}` first"
            )
        return {p: self.verified_variant(p, metadata) for p in chosen}

    def commit_json(
        self, name: str, data: Any, metadata: Metadata, keep: tuple[str, ...] = (), also: dict[str, Any] | None = None
    ) -> None:
        """Publish one JSON result of a stage, with its checksum in metadata.json.

        `keep`: top-level keys of the current file carried over (other machines' results, e.g. "devices");
        `also`: more JSON files of the same stage, committed together with it.
        """
        current = self.file(name)
        if keep and current.is_file() and name in metadata.files:
            with contextlib.suppress(EdgeRuntimeError, FolderError):
                old = commits.read_results_json(self.verified(name, metadata), name)
                data = {**{key: old[key] for key in keep if key in old}, **data}
        with self.transaction() as tx:
            for file_name, content in {name: data, **(also or {})}.items():
                tx.write_json(file_name, content)
                metadata.files[file_name] = tx.record(file_name)
            tx.commit(metadata)

    def store_device(self, name: str, device: str, entry: dict[str, Any], metadata: Metadata) -> None:
        """Put one device's entry into benchmark.json or drift.json (`devices.<device>`), keeping the rest."""
        data: dict[str, Any] = {}
        if self.file(name).is_file() and name in metadata.files:
            data = commits.read_results_json(self.verified(name, metadata), name)
        data.setdefault("devices", {})[device] = entry
        self.commit_json(name, data, metadata)

    def check_writable_for(self, identity: dict[str, Any], overwrite: bool, same_model: bool = True) -> None:
        """Refuse to train into a folder that holds a different model (or other files) unless told; with
        `same_model` False (import, which keeps nothing of what was there), any model at all."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise FolderError(f"{self.path}: is a file; choose another --output")
        if overwrite:
            return
        if not self.has_metadata():
            visible = [p for p in self.path.iterdir() if not p.name.startswith(".") and p.name != CHECKPOINT_FILE]
            if visible:
                raise FolderError(
                    f"{self.path}: exists and is not an edge-pipeline model folder; pass --overwrite or choose another "
                    "--output"
                )
            return
        try:
            existing = self.load()
        except FolderError:
            raise FolderError(
                f"{self.path}: has an unreadable metadata.json; pass --overwrite to replace the model in it"
            ) from None
        old = model_identity(existing.training.get("model"), existing.dataset)
        if old != identity or not same_model:
            held = existing.training.get("imported_from") or old["model"]
            raise FolderError(
                f"{self.path}: holds {'a different' if old != identity else 'a'} model ({held} on "
                f"{old['path'] or old['dataset']}, {len(existing.variants)} variant(s)); pass --overwrite to replace "
                "it and everything measured of it, or choose another --output"
            )

    def recorded_split(self, metadata: Metadata) -> dict[str, Any] | None:
        """split.json, written when the model was trained on an image folder (None for named datasets)."""
        if SPLIT_JSON not in metadata.files:
            return None
        return commits.read_results_json(self.verified(SPLIT_JSON, metadata), SPLIT_JSON)

    def writing(self, command: str, create: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold this folder's lock for a stage that writes it (see pipeline.store.commits); only `train` creates it."""
        if not create:
            self._check_exists()
        return commits.writing(self.path, command)

    def check_room(self, needed: int, stage: str) -> None:
        commits.check_room(self.path, needed, stage)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Stage a stage's files; call `commit` to publish them, anything else leaves no trace."""
        if not commits.holding(self.path):
            raise RuntimeError(f"{self.path}: a transaction outside `writing()`; every writer must hold the lock")
        transaction = Transaction(self.path)
        try:
            yield transaction
        finally:
            transaction.abort()
