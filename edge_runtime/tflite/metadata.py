"""TFLite metadata inside a .tflite file, read without TensorFlow, MediaPipe or tflite-support.

This is what MediaPipe Tasks and the TFLite Task Library read (schema: mediapipe's
``tasks/metadata/metadata_schema.fbs``, identifier "M001"): the model's ``TFLITE_METADATA``
entry holds a ModelMetadata flatbuffer (name, description, input colour space and
normalization, output labels), and associated files such as ``labels.txt`` are a zip archive
appended to the model (stored, not compressed). Interpreters ignore both.

edge-pipeline also writes one entry of its own, ``edge_pipeline_input``: the JSON of the
``InputSpec`` a device feeds, for what the standard fields cannot say (inverted images).
The write side is ``pipeline.conversion.metadata_writer``.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import EdgeRuntimeError, MetadataError
from ..folder.reader import parse_labels
from ..folder.records import InputSpec
from ..safe_files import parse_json, zip_directory
from .requirements import metadata_buffers, root
from .structure import Damaged, Table

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
INPUT_SPEC_NAME = "edge_pipeline_input"
COLOR_SPACES = {1: "rgb", 2: "grayscale"}  # ColorSpaceType; 0 is UNKNOWN
IMAGE_PROPERTIES = 2  # ContentProperties union member
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
# The zip of associated files appended to a model (README, "The model folder"): a labels file of 100,000
# classes is about 2 MB; anything past these is not a label file, and the metadata is ignored.
ZIP_MEMBERS = 16
ZIP_DIRECTORY_BYTES = ZIP_MEMBERS * (46 + 65535 + 65535)  # 16 entries of the longest name and extra field
ZIP_MEMBER_BYTES = 4 << 20
ZIP_TOTAL_BYTES = 16 << 20
ZIP_RATIO = 200  # inflated / compressed, for members over 64 KB
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
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
        return InputSpec(height, width, channels, color, dtype=dtype, mean=_value(self.mean, 0.0, channels),
                         std=_value(self.std, 1.0, channels))  # fmt: skip

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


def _value(values: tuple[float, ...], default: float, channels: int) -> float | tuple[float, ...]:
    """NormalizationOptions' mean or std: one value, or one per channel (MediaPipe's per-channel form)."""
    if not values:
        return default
    return values if len(values) == channels and channels > 1 and len(set(values)) > 1 else values[0]


def _normalization(tensor: Table) -> tuple[tuple[float, ...], tuple[float, ...]]:
    for unit in tensor.tables(4, "process unit"):
        if unit.scalar(0, "B", 0) == NORMALIZATION_OPTIONS and (options := unit.table(1, "normalization")) is not None:
            return tuple(options.ints(0, "f", "mean")), tuple(options.ints(1, "f", "std"))
    return (), ()


def _color(tensor: Table) -> str | None:
    content = tensor.table(3, "content")
    if content is None or content.scalar(0, "B", 0) != IMAGE_PROPERTIES:
        return None
    properties = content.table(1, "image properties")
    return COLOR_SPACES.get(properties.scalar(0, "b", 0)) if properties is not None else None


def _label_file(tensor: Table) -> str | None:
    files = tensor.tables(6, "associated file")
    return next((f.string(0, "name") for f in files if f.scalar(2, "b", 0) == TENSOR_AXIS_LABELS), None)


def _zip_problem(infos: list[zipfile.ZipInfo]) -> str | None:
    """Why the zip appended to a model is not read, if it breaks a limit; None when it is fine."""
    if len(infos) > ZIP_MEMBERS:
        return f"its metadata zip holds {len(infos)} files, over the limit of {ZIP_MEMBERS}"
    for info in infos:
        if info.compress_type not in ZIP_METHODS:
            method = info.compress_type
            return f"its metadata zip compresses {info.filename!r} with method {method} (not stored or deflate)"
        if info.file_size > ZIP_MEMBER_BYTES:
            return (
                f"its metadata zip's {info.filename!r} inflates to {info.file_size:,} bytes, over {ZIP_MEMBER_BYTES:,}"
            )
        if info.file_size > ZIP_RATIO * max(info.compress_size, 1) and info.file_size > 1 << 16:
            return (
                f"its metadata zip's {info.filename!r} inflates {info.file_size // max(info.compress_size, 1):,}-fold"
            )
    if sum(info.file_size for info in infos) > ZIP_TOTAL_BYTES:
        return f"its metadata zip inflates to more than {ZIP_TOTAL_BYTES:,} bytes"
    return None


def _zip_member(content: bytes, wanted: str | None) -> tuple[bytes | None, list[str], str | None]:
    """(the wanted member's bytes, every member's name, why the zip was not read) of the zip appended to a model."""
    stream = io.BytesIO(content)
    declared = zip_directory(stream)
    if declared is not None and (declared[0] > ZIP_MEMBERS or declared[1] > ZIP_DIRECTORY_BYTES):
        # Before zipfile reads the directory: a million empty members took 570 MB and 8 s to list.
        return None, [], f"its metadata zip declares {declared[0]:,} files, over the limit of {ZIP_MEMBERS}"
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None, [], None  # no zip at all: metadata without associated files
    with archive:
        infos = archive.infolist()
        problem = _zip_problem(infos)
        names = sorted(info.filename[:200] for info in infos[:ZIP_MEMBERS])
        if problem or wanted not in archive.namelist():
            return None, names, problem
        try:
            with archive.open(wanted) as member:
                data = member.read(ZIP_MEMBER_BYTES + 1)
        except (
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            ValueError,
            OSError,
            EOFError,
            zlib.error,
        ) as error:
            return None, names, f"its metadata zip's {wanted!r} cannot be read ({error})"
    if len(data) > ZIP_MEMBER_BYTES:
        return None, names, f"its metadata zip's {wanted!r} inflates past {ZIP_MEMBER_BYTES:,} bytes"
    return data, names, None


def _own_input(entries: dict[str, bytes], where: str) -> dict[str, Any] | None:
    """edge-pipeline's own `edge_pipeline_input` entry, checked as an InputSpec (MetadataError when it is not one)."""
    own = entries.get(INPUT_SPEC_NAME)
    if not own:
        return None
    data = parse_json(own[:ZIP_MEMBER_BYTES].decode("utf-8"), where, "its embedded input entry", MetadataError)
    InputSpec.from_dict(data, f"{where}'s embedded input entry")
    return data


def _parsed(content: bytes, where: str) -> tuple[EmbeddedMetadata | None, str | None]:
    entries = metadata_buffers(content)
    input_spec = _own_input(entries, where)
    buffer = entries.get(METADATA_NAME)
    if not buffer:
        return (EmbeddedMetadata(input_spec=input_spec) if input_spec else None), None
    if buffer[4:8] != METADATA_IDENTIFIER:
        raise Damaged("it is not a ModelMetadata flatbuffer (no 'M001')")
    meta = root(buffer, "ModelMetadata")
    subgraphs = meta.tables(3, "subgraph metadata")
    inputs = subgraphs[0].tables(2, "input metadata") if subgraphs else []
    outputs = subgraphs[0].tables(3, "output metadata") if subgraphs else []
    mean, std = _normalization(inputs[0]) if inputs else ((), ())
    label_file = _label_file(outputs[0]) if outputs else None
    data, files, problem = _zip_member(content, label_file)
    labels = parse_labels(data.decode("utf-8"), f"{where}'s embedded labels") if data is not None else None
    found = EmbeddedMetadata(
        name=meta.string(0, "name"),
        description=meta.string(1, "description"),
        version=meta.string(2, "version"),
        author=meta.string(4, "author"),
        color=_color(inputs[0]) if inputs else None,
        mean=mean if all(map(math.isfinite, mean)) else (),
        std=std if all(math.isfinite(v) and v > 0 for v in std) else (),
        labels=labels or None,
        label_file=label_file,
        input_spec=input_spec,
        files=files,
    )
    return found, problem


def read_embedded(content: bytes, where: str = "model") -> tuple[EmbeddedMetadata | None, str | None]:
    """(the TFLite metadata of a model's bytes or None, a warning line when some of it could not be read).

    Metadata is a convenience: when it is damaged or breaks a limit (README, "The model folder") it is
    ignored with one warning, and the model still runs as a file without metadata.
    """
    try:
        return _parsed(content, where)
    except (Damaged, EdgeRuntimeError, struct.error, IndexError, UnicodeDecodeError, ValueError) as error:
        return None, f"{where}: its TFLite metadata is damaged and was ignored ({error})"
    except RuntimeError as error:  # a RecursionError from JSON nested too deep
        return None, f"{where}: its TFLite metadata was ignored ({type(error).__name__})"
