"""The read side of the model-folder format: file names, schema version, input spec, labels.

A model folder (``models/<name>/``) holds ``model.keras``, ``model_<precision>.tflite``
variants, ``labels.txt`` and ``metadata.json``. The device only needs this module to
understand a folder; ``pipeline.bundle`` builds the writing side on top of it, so names
and the schema live in one place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
VARIANT_PREFERENCE = ("int8", "dynamic", "float16", "float32")
COLORS = ("rgb", "grayscale")


def variant_filename(precision: str) -> str:
    """File name of a TFLite variant inside a model folder, e.g. ``model_int8.tflite``."""
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
    """Read and check ``metadata.json`` of a model folder (schema, task, input block)."""
    path = Path(folder) / METADATA_FILE
    data = read_json_object(path, "metadata.json")
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise MetadataError(f"{path}: 'schema' must be an integer; the file is damaged")
    if schema > SCHEMA_VERSION:
        raise MetadataError(
            f"{path}: written with schema {schema}, newer than this version understands "
            f"({SCHEMA_VERSION}); upgrade edge-pipeline/edge_runtime"
        )
    task = data.get("task", TASK)
    if task != TASK:
        raise MetadataError(f"{path}: task is {task!r}; only {TASK!r} models are supported")
    InputSpec.from_dict(data.get("input"), str(path))
    labels = data.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise MetadataError(f"{path}: 'labels' must be a list of strings")
    variants = data.get("variants", {})
    if not isinstance(variants, dict):
        raise MetadataError(f"{path}: 'variants' must be an object")
    return data


def read_labels(path: Path) -> list[str]:
    """Read a labels file: one label a line (as TensorFlow's label_image expects)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelsError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LabelsError(f"{path}: cannot read labels ({error})") from None
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
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


def variant_for_file(metadata: dict[str, Any], filename: str) -> tuple[str, dict[str, Any]] | None:
    """The (precision, record) of ``metadata['variants']`` that describes ``filename``, if any."""
    for precision, record in metadata.get("variants", {}).items():
        if isinstance(record, dict) and record.get("file") == filename:
            return precision, record
    return None


def verify_checksum(path: Path, record: dict[str, Any]) -> None:
    """Raise MetadataError when a file does not match the sha256 recorded in metadata.json."""
    expected = record.get("sha256")
    if not expected:
        return
    if sha256_file(path) != expected:
        raise MetadataError(
            f"{path}: contents do not match the sha256 in {METADATA_FILE} (damaged or replaced "
            f"file); copy the folder again or re-run `edge-pipeline convert`"
        )


def variant_candidates(folder: Path, metadata: dict[str, Any] | None) -> list[Path]:
    """A folder's model files, best first: the recommended variant, then by preference, then the rest."""
    folder = Path(folder)
    preferred = []
    if metadata and isinstance(metadata.get("recommended"), str):
        preferred.append(metadata["recommended"])
    preferred.extend(VARIANT_PREFERENCE)
    ordered = [folder / variant_filename(p) for p in dict.fromkeys(preferred)]
    ordered = [path for path in ordered if path.is_file()]
    return ordered + [path for path in sorted(folder.glob(f"*{VARIANT_SUFFIX}")) if path not in ordered]


def choose_variant(folder: Path, metadata: dict[str, Any] | None) -> Path | None:
    """The model file to use when a folder is given, ignoring the interpreter (see predictor.choose_model)."""
    candidates = variant_candidates(folder, metadata)
    return candidates[0] if candidates else None
