"""What each stage consumed, recorded in metadata.json's `stages`, so a re-run of `run` skips what is up to date.

A stage's record holds the options that shape what it makes (not where things are, nor how progress
shows), the sha256 of each file it read, the identity of the data it used (pipeline.data.fingerprint),
the library versions, and for `benchmark` the machine. `run` skips a stage when the record it would
write now equals the one in the folder and every file the stage would write for the options asked (not
only those metadata.json still lists) is recorded, present and matches its checksum; it
says so ("convert: up to date"), and `--force` redoes every stage. A stage redone makes new files, whose
checksums are the next stage's inputs, so everything after it is redone too. Device measurements
(`--on`, `--emulate`) are not skipped: they are of a device, which the folder cannot vouch for.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_runtime.choices import Precision, Target
from edge_runtime.folder.reader import TARGET_PRECISIONS, variant_filename, variant_name

from ..data.dataset import DataConfig
from ..data.fingerprint import data_identity
from ..errors import FolderError
from ..folder import (
    BENCHMARK_JSON,
    DRIFT_JSON,
    KERAS_FILE,
    LABELS_FILE,
    PREDICTIONS_JSON,
    QUANTIZATION_JSON,
    REPORT_CSV,
    REPORT_JSON,
    REPORT_MD,
    FolderStore,
    Metadata,
    library_versions,
)
from .commits import now

STAGES = ("train", "convert", "evaluate", "benchmark", "report")


def _variants(metadata: Metadata) -> list[str]:
    return [variant.file for variant in metadata.variants.values()]


def _present(*names: str) -> Callable[[Metadata], list[str]]:
    return lambda metadata: [name for name in names if name in metadata.files]


def _converted(metadata: Metadata, options: dict[str, Any]) -> list[str]:
    """The files convert writes for the precisions and targets asked: each variant's (but those its last run
    skipped and said why: too new for --target-runtime, a mixed that met no target), and quantization.json with
    an int8 or mixed plain-TFLite variant. What metadata.json lists is not enough: a variant taken out of it,
    its file deleted, was "up to date" and never made again."""
    skipped = {str(line).split(":", 1)[0] for line in (metadata.conversion or {}).get("skipped") or []}
    targets, precisions = tuple(options["targets"]), tuple(options["precisions"])
    names = [variant_name(p, t) for t in targets for p in precisions if p in TARGET_PRECISIONS[t]]
    made = [name for name in names if name not in skipped]
    measured = targets[0] == Target.TFLITE and {Precision.INT8, Precision.MIXED} & set(made)
    return [*(variant_filename(name) for name in made), *([QUANTIZATION_JSON] if measured else [])]


# The files each stage reads, and those it makes given the folder and the options asked.
READS: dict[str, Callable[[Metadata], list[str]]] = {
    "train": lambda metadata: [],
    "convert": _present(KERAS_FILE),
    "evaluate": lambda metadata: [*_present(KERAS_FILE)(metadata), *_variants(metadata)],
    "benchmark": _variants,
    "report": lambda metadata: [
        *_variants(metadata),
        *_present(DRIFT_JSON, BENCHMARK_JSON, QUANTIZATION_JSON)(metadata),
    ],
}
MAKES: dict[str, Callable[[Metadata, dict[str, Any]], list[str]]] = {
    "train": lambda metadata, options: [KERAS_FILE, LABELS_FILE],
    "convert": _converted,
    "evaluate": lambda metadata, options: [DRIFT_JSON, PREDICTIONS_JSON],
    "benchmark": lambda metadata, options: [BENCHMARK_JSON],
    "report": lambda metadata, options: [REPORT_MD, REPORT_JSON, REPORT_CSV],
}
READS_DATA = {"train", "convert", "evaluate"}


def _plain(value: Any) -> Any:
    """An option's value as JSON has it (paths and choices as strings)."""
    return json.loads(json.dumps(value, default=str))


def _recorded_sha(metadata: Metadata, name: str) -> str | None:
    if name in metadata.files:
        return metadata.files[name].get("sha256")
    variant = metadata.variant_for_file(name)
    return variant.sha256 if variant is not None else None


def machine() -> dict[str, Any]:
    """What a latency is of: the CPU, its cores, the architecture (not the host name: containers change it)."""
    from ..measure.benchmark import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()}


def consumed(stage: str, options: dict[str, Any], metadata: Metadata | None, data: DataConfig | None) -> dict[str, Any]:
    """The record `stage` would write now: the options that shape what it makes (its config's, as
    `pipeline.surface.stage_configs.record_of` gives them), the files it reads, its data's identity."""
    record: dict[str, Any] = {"options": _plain(options), "versions": library_versions()}
    record["versions"].pop("edge-pipeline", None)  # a re-install of the same code is not a change
    reads = READS[stage](metadata) if metadata is not None else []
    record["files"] = {name: _recorded_sha(metadata, name) for name in reads} if metadata is not None else {}
    if stage in READS_DATA and data is not None:
        record["data"] = data_identity(data)
    if stage == "benchmark":
        record["machine"] = machine()
    return record


def recorded_data(folder: FolderStore, moved: Path | None, data_dir: Path | None) -> DataConfig | None:
    """The data the folder's model was trained on, relocated to `moved`/`data_dir` (None: no readable folder)."""
    try:
        metadata = folder.load() if folder.has_metadata() else None
    except FolderError:
        return None
    return DataConfig.from_record(metadata.dataset, moved, data_dir) if metadata is not None else None


def _intact(folder: FolderStore, metadata: Metadata, names: list[str]) -> bool:
    """Every file listed is recorded in metadata.json and passes the folder's own check (FolderStore.verified)."""
    for name in names:
        if _recorded_sha(metadata, name) is None:
            return False
        try:
            folder.verified(name, metadata)
        except FolderError:
            return False
    return True


def up_to_date(stage: str, options: dict[str, Any], folder: FolderStore, data: DataConfig | None) -> str | None:
    """When `stage` would consume exactly what it consumed last time, and every file it reads and every file it
    would write for these options is recorded in metadata.json, present and matches its sha256: when it ran."""
    if not folder.has_metadata():
        return None
    try:
        metadata = folder.load()
    except FolderError:
        return None
    record = metadata.stages.get(stage)
    if not isinstance(record, dict) or record.get("consumed") != consumed(stage, options, metadata, data):
        return None
    if not _intact(folder, metadata, READS[stage](metadata) + MAKES[stage](metadata, options)):
        return None  # every file it reads and every one it would write now: recorded, present, sha256 intact
    return str(record.get("at", ""))


def before(stage: str, options: dict[str, Any], folder: FolderStore, data: DataConfig | None) -> dict[str, Any]:
    """`consumed` as the stage starts (a folder without a readable metadata.json: training's first run)."""
    try:
        metadata = folder.load() if folder.has_metadata() else None
    except FolderError:
        metadata = None
    return consumed(stage, options, metadata, data)


def store(folder: FolderStore, stage: str, record: dict[str, Any]) -> None:
    """Write a finished stage's record into metadata.json (holding the folder's lock, as every writer does)."""
    with folder.writing(stage), folder.transaction() as tx:
        metadata = folder.load()
        metadata.stages[stage] = {"consumed": record, "at": now()}
        tx.commit(metadata)
