"""The model folder: its layout, the metadata.json schema, and safe writes. Every stage asks here.

Layout of ``models/<name>/``::

    model.keras                 the trained Keras model
    labels.txt                  one label a line
    history.json, history.png   loss and accuracy per epoch
    model_<precision>.tflite    float32, float16, dynamic, int8, mixed (after `convert`)
    model_mediapipe-<p>.tflite  float32, float16, int8 for MediaPipe (after `convert --target mediapipe`)
    drift.json                  accuracy drift of each variant (after `evaluate`)
    benchmark.json              latency of each variant (after `benchmark`)
    report.md/.json/.csv, *.png the report (after `report`)
    metadata.json               written last; its checksums verify the files above

Writes go to a hidden temporary file in the same folder and are renamed into place, and a
stage's files are committed together with Ctrl-C deferred, so an interrupted stage leaves
the folder as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_runtime import model_folder as layout
from edge_runtime.choices import Precision
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.model_folder import (
    FolderMetadata,
    TensorQuantization,
    VariantRecord,
    read_json_object,
    sha256_file,
    split_variant,
    variant_filename,
)

from .errors import FolderError
from .signals import interrupts_deferred

SCHEMA_VERSION = layout.SCHEMA_VERSION
KERAS_FILE = layout.KERAS_FILE
LABELS_FILE = layout.LABELS_FILE
METADATA_FILE = layout.METADATA_FILE
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
SPLIT_JSON = "split.json"  # image folders: which file went to train, validation and test
DRIFT_JSON = "drift.json"
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
TEMP_MARKER = ".tmp-"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
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


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- atomic writes -------------------------------------------------------------------------


def _temp_path(path: Path) -> Path:
    """A fresh hidden name beside `path` that keeps its suffix (Keras and matplotlib need it)."""
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}{TEMP_MARKER}", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    Path(name).chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; the published file should be like any other
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    try:
        yield temp
        with open(temp, "rb+") as stream:
            os.fsync(stream.fileno())
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, to_json(data))


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


class Transaction:
    """Files a stage writes, staged as hidden temporaries and committed together.

    Nothing in the folder changes until `commit`, which renames every staged file into place
    and writes metadata.json last, with Ctrl-C held back until it is done.
    """

    def __init__(self, folder: ModelFolder) -> None:
        self.folder = folder
        self._staged: dict[str, Path] = {}
        self._removed: set[str] = set()

    def path(self, name: str) -> Path:
        """A temporary path to write `name` to (for libraries that write by file name)."""
        if name not in self._staged:
            self.folder.path.mkdir(parents=True, exist_ok=True)
            self._staged[name] = _temp_path(self.folder.path / name)
        return self._staged[name]

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self.path(name)
        target.write_bytes(data)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, to_json(data))

    def remove(self, name: str) -> None:
        """Delete `name` from the folder at commit time."""
        self._removed.add(name)

    def record(self, name: str) -> dict[str, Any]:
        """bytes and sha256 of a staged file, for metadata.json."""
        return file_record(self._staged[name])

    def commit(self, metadata: Metadata) -> None:
        metadata.updated_at = now()
        text = to_json(metadata.to_dict())
        metadata_temp = self.path(METADATA_FILE)
        metadata_temp.write_text(text, encoding="utf-8")
        for temp in self._staged.values():
            with open(temp, "rb+") as stream:
                os.fsync(stream.fileno())
        with interrupts_deferred():
            for name in self._removed - set(self._staged):
                (self.folder.path / name).unlink(missing_ok=True)
            for name, temp in self._staged.items():
                if name != METADATA_FILE:
                    temp.replace(self.folder.path / name)
            metadata_temp.replace(self.folder.path / METADATA_FILE)
        self._staged.clear()

    def abort(self) -> None:
        for temp in self._staged.values():
            temp.unlink(missing_ok=True)
        self._staged.clear()


class ModelFolder:
    """A model folder on disk: paths, metadata, checksums and transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

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
        if not self.path.exists():
            raise FolderError(
                f"{self.path}: no such model folder; train one with `edge-pipeline train --output {self.path}`"
            )
        if not self.path.is_dir():
            raise FolderError(f"{self.path}: is a file, not a model folder")
        if not self.has_metadata():
            raise FolderError(
                f"{self.path}: no metadata.json, so this is not a finished model folder; run `edge-pipeline train "
                f"--output {self.path}`"
            )
        try:
            return layout.load_metadata(self.path)
        except EdgeRuntimeError as error:
            raise FolderError(str(error)) from None

    def verified(self, name: str, metadata: Metadata) -> Path:
        """Path of a file after checking it exists and matches its checksum in metadata.json."""
        path = self.path / name
        record: dict[str, Any] | None = metadata.files.get(name)
        if record is None:
            for variant in metadata.variants.values():
                if variant.file == name:
                    record = {"sha256": variant.sha256}
        if not path.is_file():
            raise FolderError(
                f"{path}: missing; metadata.json lists it, so the folder is incomplete: re-run the stage that writes it"
            )
        if record and record.get("sha256") and sha256_file(path) != record["sha256"]:
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

    def commit_json(self, name: str, data: Any, metadata: Metadata, keep: tuple[str, ...] = ()) -> None:
        """Publish one JSON result of a stage, with its checksum in metadata.json.

        `keep`: top-level keys of the current file carried over (other machines' results, e.g. "devices").
        """
        current = self.file(name)
        if keep and current.is_file() and name in metadata.files:
            with contextlib.suppress(EdgeRuntimeError):
                old = read_json_object(current, name)
                data = {**{key: old[key] for key in keep if key in old}, **data}
        with self.transaction() as tx:
            tx.write_json(name, data)
            metadata.files[name] = tx.record(name)
            tx.commit(metadata)

    def check_writable_for(self, identity: dict[str, Any], overwrite: bool) -> None:
        """Refuse to train into a folder that holds a different model (or other files) unless told."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise FolderError(f"{self.path}: is a file; choose another --output")
        if overwrite:
            return
        if not self.has_metadata():
            visible = [p for p in self.path.iterdir() if not p.name.startswith(".")]
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
        if old != identity:
            raise FolderError(
                f"{self.path}: holds a different model ({old['model']} on {old['path'] or old['dataset']}); "
                f"pass --overwrite to replace it or choose another --output"
            )

    def recorded_split(self, metadata: Metadata) -> dict[str, Any] | None:
        """split.json, written when the model was trained on an image folder (None for named datasets)."""
        if SPLIT_JSON not in metadata.files:
            return None
        return read_json_object(self.verified(SPLIT_JSON, metadata), SPLIT_JSON)

    def clean_temporaries(self) -> None:
        """Remove temporaries left by a process that was killed before it could clean up."""
        if self.path.is_dir():
            for leftover in self.path.glob(f".*{TEMP_MARKER}*"):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Stage a stage's files; call `commit` to publish them, anything else leaves no trace."""
        self.clean_temporaries()
        transaction = Transaction(self)
        try:
            yield transaction
        finally:
            transaction.abort()
