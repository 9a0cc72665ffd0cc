"""The read side of the model-folder format: file names, schema, typed metadata records, labels.

A model folder (``models/<name>/``) holds ``model.keras``, ``model_<precision>.tflite``
variants, ``labels.txt`` and ``metadata.json``. This is the one module that parses
``metadata.json`` (``FolderMetadata``, ``VariantRecord``, ``TensorQuantization``; numpy only), for
the device's predictor and for ``pipeline`` alike; ``pipeline.bundle`` keeps only the write side.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .choices import Precision, Target
from .errors import LabelsError, MetadataError

SCHEMA_VERSION = 1
TASK = "image-classification"
METADATA_FILE = "metadata.json"
LABELS_FILE = "labels.txt"
KERAS_FILE = "model.keras"
VARIANT_PREFIX = "model_"
VARIANT_SUFFIX = ".tflite"
# When a folder is given instead of a file, the first variant present wins: the
# integer model is the one that is made to ship to a device.
VARIANT_PREFERENCE = (Precision.INT8, Precision.MIXED, Precision.DYNAMIC, Precision.FLOAT16, Precision.FLOAT32)
COLORS = ("rgb", "grayscale")
# The precisions each target is made in. MediaPipe's ImageClassifier takes float32 or uint8 tensors only:
# the TF converter's int8 with uint8 I/O is its integer model (ai-edge-quantizer writes int8 I/O).
TARGET_PRECISIONS = {
    Target.TFLITE: tuple(Precision),
    Target.MEDIAPIPE: (Precision.FLOAT32, Precision.FLOAT16, Precision.INT8),
}


def variant_name(precision: str, target: str = Target.TFLITE) -> str:
    """A variant's key in metadata.json: its precision for plain TFLite, e.g. ``mediapipe-int8`` otherwise."""
    return str(precision) if target == Target.TFLITE else f"{target}-{precision}"


def split_variant(name: str) -> tuple[str, str]:
    """(target, precision) of a variant name: 'int8' -> ('tflite', 'int8'); 'mediapipe-int8' -> ('mediapipe', ...)."""
    target, _, precision = str(name).rpartition("-")
    if target in Target.values() and precision in Precision.values():
        return target, precision
    return str(Target.TFLITE), str(name)


# Every variant a folder can hold, in the order folders, tables and reports list them.
VARIANT_NAMES = tuple(variant_name(p, t) for t, precisions in TARGET_PRECISIONS.items() for p in precisions)


def variant_filename(precision: str) -> str:
    """File name of a variant in a model folder: ``model_int8.tflite``, ``model_mediapipe-int8.tflite``."""
    return f"{VARIANT_PREFIX}{precision}{VARIANT_SUFFIX}"


@dataclass(frozen=True)
class InputSpec:
    """What a device does to an image before the model sees it.

    The image is converted to ``color``, resized to ``height`` x ``width``, inverted
    (255 - x) when ``invert`` is set, and fed as ``(pixels - mean) / std``. Our models
    normalise inside the graph, so for them ``mean`` is 0 and ``std`` is 1: raw pixels.
    """

    height: int
    width: int
    channels: int
    color: str = "rgb"
    invert: bool = False
    dtype: str = "uint8"
    mean: float = 0.0
    std: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = METADATA_FILE) -> InputSpec:
        """Parse and validate the ``input`` block of metadata.json."""
        if not isinstance(data, dict):
            raise MetadataError(f"{where}: 'input' must be an object with height, width, channels")
        try:
            spec = cls(
                height=int(data["height"]),
                width=int(data["width"]),
                channels=int(data["channels"]),
                color=str(data.get("color", "rgb")),
                invert=bool(data.get("invert", False)),
                dtype=str(data.get("dtype", "uint8")),
                mean=float(data.get("mean", 0.0)),
                std=float(data.get("std", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(f"{where}: 'input' is incomplete or malformed ({error!r})") from None
        if spec.height < 1 or spec.width < 1 or spec.channels not in (1, 3):
            raise MetadataError(f"{where}: 'input' has an impossible shape {spec.height}x{spec.width}x{spec.channels}")
        if spec.color not in COLORS:
            raise MetadataError(f"{where}: 'input.color' must be one of {', '.join(COLORS)}, not {spec.color!r}")
        if spec.std == 0:
            raise MetadataError(f"{where}: 'input.std' must not be 0")
        return spec


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object, with one-line errors for every failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetadataError(f"{path}: no {what} here") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MetadataError(f"{path}: cannot read {what} ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}: {what} is not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: {what} must hold a JSON object")
    return data


def read_metadata(folder: Path) -> dict[str, Any]:
    """metadata.json of a model folder as checked JSON (schema, task, input, labels, variants)."""
    path = Path(folder) / METADATA_FILE
    data = read_json_object(path, "metadata.json")
    _check_header(data, str(path))
    InputSpec.from_dict(data.get("input"), str(path))
    for precision, record in data.get("variants", {}).items():
        VariantRecord.from_dict(precision, record, str(path))
    return data


def load_metadata(folder: Path) -> FolderMetadata:
    """metadata.json of a model folder as typed records; every problem is a one-line MetadataError."""
    path = Path(folder) / METADATA_FILE
    return FolderMetadata.from_dict(read_json_object(path, "metadata.json"), str(path))


def parse_labels(text: str) -> list[str]:
    """One label a line, trailing blank lines dropped: labels.txt and the labels file inside a .tflite."""
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    return labels


def read_labels(path: Path) -> list[str]:
    """Read a labels file: one label a line (as TensorFlow's label_image expects)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelsError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(f"{path}: cannot read labels ({error})") from None
    labels = parse_labels(text)
    if not labels:
        raise LabelsError(f"{path}: labels file is empty")
    return labels


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large models do not need to fit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, record: VariantRecord | None) -> None:
    """Raise MetadataError when a file does not match the sha256 recorded in metadata.json."""
    if record is None or not record.sha256:
        return
    if sha256_file(path) != record.sha256:
        raise MetadataError(
            f"{path}: contents do not match the sha256 in {METADATA_FILE} (damaged or replaced "
            f"file); copy the folder again or re-run `edge-pipeline convert`"
        )


def variant_candidates(folder: Path, metadata: FolderMetadata | None) -> list[Path]:
    """A folder's model files, best first: the recommended variant, then by preference, then the rest."""
    folder = Path(folder)
    preferred = [metadata.recommended] if metadata and metadata.recommended else []
    preferred.extend(VARIANT_PREFERENCE)
    ordered = [folder / variant_filename(p) for p in dict.fromkeys(preferred)]
    ordered = [path for path in ordered if path.is_file()]
    return ordered + [path for path in sorted(folder.glob(f"*{VARIANT_SUFFIX}")) if path not in ordered]


# --- typed records: the one parser of metadata.json ------------------------------------------------


@dataclass(frozen=True)
class TensorQuantization:
    """dtype and affine quantization of a model input or output: real = (q - zero_point) * scale; scale 0: float."""

    dtype: str
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in ("int8", "uint8", "int16", "int32")

    @classmethod
    def of(cls, details: dict[str, Any]) -> TensorQuantization:
        """From an interpreter's get_input_details()/get_output_details() entry."""
        scale, zero_point = details.get("quantization", (0.0, 0))
        return cls(np.dtype(details["dtype"]).name, float(scale), int(zero_point))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorQuantization:
        return cls(str(data["dtype"]), float(data.get("scale", 0.0)), int(data.get("zero_point", 0)))


@dataclass(frozen=True)
class VariantRecord:
    """One .tflite file of the folder, as recorded in metadata.json."""

    precision: str
    file: str
    bytes: int
    sha256: str
    input: TensorQuantization
    output: TensorQuantization
    route: str
    io_type: str | None = None
    calibration_samples: int | None = None
    seconds: float | None = None
    min_runtime: str | None = None  # oldest TFLite runtime that runs the file (from the file itself)
    ops: dict[str, int] | None = None  # each operator's highest version in the file
    settings: dict[str, Any] | None = None  # converter flags beyond the precision's own (e.g. for --target-runtime)
    calibration: str | None = None  # how int8 ranges were calibrated (Calibration), for int8 and mixed
    mixed: dict[str, Any] | None = None  # mixed: the float ops, how they were chosen, agreement reached
    targets: list[str] | None = None  # where the file runs as it is (Target values); None: written before targets
    image: InputSpec | None = None  # this file's own input when it differs from the folder's (mediapipe: RGB)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("precision")
        return data

    def input_spec(self, folder_input: InputSpec) -> InputSpec:
        """What a device feeds this file: its own input when recorded, else the folder's."""
        return self.image or folder_input

    @classmethod
    def from_dict(cls, precision: str, data: Any, where: str = METADATA_FILE) -> VariantRecord:
        try:
            return cls(
                precision=precision,
                file=str(data["file"]),
                bytes=int(data["bytes"]),
                sha256=str(data["sha256"]),
                input=TensorQuantization.from_dict(data["input"]),
                output=TensorQuantization.from_dict(data["output"]),
                route=str(data.get("route", "unknown")),
                io_type=data.get("io_type"),
                calibration_samples=data.get("calibration_samples"),
                seconds=data.get("seconds"),
                min_runtime=data.get("min_runtime"),
                ops=data.get("ops"),
                settings=data.get("settings"),
                calibration=data.get("calibration"),
                mixed=data.get("mixed"),
                targets=data.get("targets"),
                image=InputSpec.from_dict(data["image"], where) if data.get("image") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(
                f"{where}: variant {precision!r} is malformed ({error!r}); re-run `edge-pipeline convert`"
            ) from None


@dataclass
class FolderMetadata:
    """metadata.json of a model folder. `dataset` and `training` are owned by their stages."""

    name: str
    labels: list[str]
    input: InputSpec
    dataset: dict[str, Any]
    training: dict[str, Any]
    variants: dict[str, VariantRecord] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversion: dict[str, Any] | None = None
    recommended: str | None = None
    created_at: str = ""
    updated_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "task": TASK,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "output": {"classes": len(self.labels), "activation": "softmax"},
            "dataset": self.dataset,
            "training": self.training,
            "variants": {p: v.to_dict() for p, v in self.variants.items()},
            "conversion": self.conversion,
            "files": self.files,
            "recommended": self.recommended,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = METADATA_FILE) -> FolderMetadata:
        """Parse and check a metadata.json object; every problem is a one-line MetadataError."""
        _check_header(data, where)
        for key in ("name", "labels", "input", "dataset", "training"):
            if key not in data:
                raise MetadataError(f"{where}: metadata.json has no {key!r}; the file is incomplete or damaged")
        if not isinstance(data["dataset"], dict) or not isinstance(data["training"], dict):
            raise MetadataError(f"{where}: metadata.json 'dataset' and 'training' must be objects")
        files = data.get("files") or {}
        if not isinstance(files, dict):
            raise MetadataError(f"{where}: metadata.json 'files' must be an object")
        return cls(
            name=str(data["name"]),
            labels=list(data["labels"]),
            input=InputSpec.from_dict(data["input"], where),
            dataset=data["dataset"],
            training=data["training"],
            variants={p: VariantRecord.from_dict(p, v, where) for p, v in (data.get("variants") or {}).items()},
            files=files,
            conversion=data.get("conversion"),
            recommended=data.get("recommended"),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            versions=dict(data.get("versions") or {}),
        )

    def variant_for_file(self, filename: str) -> VariantRecord | None:
        """The variant record that describes `filename`, if any."""
        return next((v for v in self.variants.values() if v.file == filename), None)


def _check_header(data: dict[str, Any], where: str) -> None:
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise MetadataError(f"{where}: 'schema' must be an integer; the file is damaged")
    if schema > SCHEMA_VERSION:
        raise MetadataError(
            f"{where}: written with schema {schema}, newer than this version understands "
            f"({SCHEMA_VERSION}); upgrade edge-pipeline/edge_runtime"
        )
    task = data.get("task", TASK)
    if task != TASK:
        raise MetadataError(f"{where}: task is {task!r}; only {TASK!r} models are supported")
    labels = data.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise MetadataError(f"{where}: 'labels' must be a list of strings")
    if not isinstance(data.get("variants", {}), dict):
        raise MetadataError(f"{where}: 'variants' must be an object")
