"""TFLite metadata inside a .tflite file, read without TensorFlow, MediaPipe or tflite-support.

This is what MediaPipe Tasks and the TFLite Task Library read (schema: mediapipe's
``tasks/metadata/metadata_schema.fbs``, identifier "M001"): the model's ``TFLITE_METADATA``
entry holds a ModelMetadata flatbuffer (name, description, input colour space and
normalization, output labels), and associated files such as ``labels.txt`` are a zip archive
appended to the model (stored, not compressed). Interpreters ignore both.

edge-pipeline also writes one entry of its own, ``edge_pipeline_input``: the JSON of the
``InputSpec`` a device feeds, for what the standard fields cannot say (inverted images).
The write side is ``pipeline.embed``.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelError
from .model_folder import InputSpec, parse_labels
from .tflite_file import _Table, metadata_buffers

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
INPUT_SPEC_NAME = "edge_pipeline_input"
COLOR_SPACES = {1: "rgb", 2: "grayscale"}  # ColorSpaceType; 0 is UNKNOWN
IMAGE_PROPERTIES = 2  # ContentProperties union member
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
# Table slots, in schema order. ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3,
# author 4, license 5, associated_files 6, min_parser_version 7. SubGraphMetadata: input tensors 2,
# output tensors 3. TensorMetadata: name 0, description 1, content 3, process_units 4, stats 5,
# associated_files 6. Content: properties type 0, properties 1. ProcessUnit: options type 0, options 1.
# NormalizationOptions: mean 0, std 1. AssociatedFile: name 0, description 1, type 2. ImageProperties: colour 0.


@dataclass(frozen=True)
class EmbeddedMetadata:
    """The TFLite metadata of one file, as far as an image classifier needs it."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    color: str | None = None  # "rgb" / "grayscale" from the input's ImageProperties
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    labels: list[str] | None = None  # from the output's TENSOR_AXIS_LABELS file
    label_file: str | None = None
    input_spec: dict[str, Any] | None = None  # edge-pipeline's own entry
    files: list[str] = field(default_factory=list)  # names in the appended zip

    @property
    def normalization(self) -> bool:
        return bool(self.mean and self.std)

    def spec(self, height: int, width: int, channels: int, dtype: str) -> InputSpec:
        """What to feed the model: edge-pipeline's own entry when present, else the standard fields."""
        if self.input_spec is not None:
            return InputSpec.from_dict(self.input_spec, "the model's embedded metadata")
        color = self.color or ("grayscale" if channels == 1 else "rgb")
        if color == "grayscale" and channels == 3:
            color = "rgb"  # a 3-channel input is fed RGB whatever the metadata says
        mean = self.mean[0] if self.mean else 0.0
        std = self.std[0] if self.std else 1.0
        return InputSpec(height, width, channels, color=color, dtype=dtype, mean=mean, std=std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "author": self.author,
            "color": self.color,
            "mean": list(self.mean),
            "std": list(self.std),
            "labels": len(self.labels) if self.labels is not None else None,
            "label_file": self.label_file,
            "files": self.files,
        }


def _normalization(tensor: _Table) -> tuple[tuple[float, ...], tuple[float, ...]]:
    for unit in tensor.tables(4):
        if unit.scalar(0, "B", 0) == NORMALIZATION_OPTIONS and (options := unit.table(1)) is not None:
            return tuple(options.floats(0)), tuple(options.floats(1))
    return (), ()


def _color(tensor: _Table) -> str | None:
    content = tensor.table(3)
    if content is None or content.scalar(0, "B", 0) != IMAGE_PROPERTIES:
        return None
    properties = content.table(1)
    return COLOR_SPACES.get(properties.scalar(0, "b", 0)) if properties is not None else None


def _label_file(tensor: _Table) -> str | None:
    return next((f.string(0) for f in tensor.tables(6) if f.scalar(2, "b", 0) == TENSOR_AXIS_LABELS), None)


def _zip_files(content: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


def read_embedded(content: bytes, where: str = "model") -> EmbeddedMetadata | None:
    """The TFLite metadata of a model's bytes; None when it has none; ModelError when it is damaged."""
    try:
        entries = metadata_buffers(content)
        own = entries.get(INPUT_SPEC_NAME)
        input_spec = json.loads(own.decode("utf-8")) if own else None
        buffer = entries.get(METADATA_NAME)
        if not buffer:
            return EmbeddedMetadata(input_spec=input_spec) if input_spec else None
        if buffer[4:8] != METADATA_IDENTIFIER:
            raise ModelError(f"{where}: its TFLite metadata is not a ModelMetadata flatbuffer (no 'M001')")
        root = _Table(buffer, struct.unpack_from("<I", buffer, 0)[0])
        subgraphs = root.tables(3)
        inputs = subgraphs[0].tables(2) if subgraphs else []
        outputs = subgraphs[0].tables(3) if subgraphs else []
        mean, std = _normalization(inputs[0]) if inputs else ((), ())
        label_file = _label_file(outputs[0]) if outputs else None
        files = _zip_files(content)
        labels = parse_labels(files[label_file].decode("utf-8")) if label_file in files else None
        return EmbeddedMetadata(
            name=root.string(0),
            description=root.string(1),
            version=root.string(2),
            author=root.string(4),
            color=_color(inputs[0]) if inputs else None,
            mean=mean,
            std=std,
            labels=labels or None,
            label_file=label_file,
            input_spec=input_spec,
            files=sorted(files),
        )
    except (struct.error, IndexError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{where}: its TFLite metadata is damaged ({error})") from None
