"""TFLite metadata written into every variant: what MediaPipe Tasks and the Task Library need, and the labels.

The route, and why: the ModelMetadata flatbuffer is built here with the `flatbuffers` package (already a
TensorFlow dependency) from the published schema (mediapipe `tasks/metadata/metadata_schema.fbs`), and
put into the model as MediaPipe's MetadataPopulator does: a `TFLITE_METADATA` entry pointing at a new
buffer, the labels file appended as a stored zip. MediaPipe's own writers are not used: mediapipe 1.2.3's
`metadata_writers` import a compiled `_pywrap_metadata_version` its wheel lacks, 0.10.21 needs numpy<2
and protobuf<5, and tflite-support 0.4.4 pins protobuf<4, so each would hold the training environment
back. The schema only ever grows, so the fields below stay valid; tests read the result with
MediaPipe's generated reader and classify with its ImageClassifier.

`min_parser_version` is "1.0.0": image properties, normalization and an axis-labels file are all in the
first metadata version (mediapipe `tasks/cc/metadata/metadata_version.cc` adds nothing for them).
The read side is `edge_runtime.tflite.metadata`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec
from edge_runtime.normalization import normalized
from edge_runtime.tflite.metadata import (
    COLOR_SPACES,
    IMAGE_PROPERTIES,
    INPUT_SPEC_NAME,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    NORMALIZATION_OPTIONS,
    TENSOR_AXIS_LABELS,
)

MIN_PARSER_VERSION = "1.0.0"
LABELS_NAME = "labels.txt"
FEATURE_PROPERTIES = 1  # ContentProperties union member of the output
AUTHOR = "edge-pipeline"


@dataclass(frozen=True)
class ModelCard:
    """What the metadata says about a model: who made it from what, and its classes."""

    name: str
    description: str
    version: str
    labels: tuple[str, ...]
    input: InputSpec  # what the variant's input takes (mean/std, colour)


def _listed(value: float | tuple[float, ...]) -> list[float]:
    """A mean or std as NormalizationOptions holds it: one value, or one per channel."""
    return list(value) if isinstance(value, tuple) else [value]


def _floats(builder: Any, values: list[float]) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(value)
    return builder.EndVector()


def _offsets(builder: Any, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _table(builder: Any, fields: int, offsets: dict[int, int], bytes_: dict[int, int] | None = None) -> int:
    """A table with `offsets` (slot -> child offset) and one-byte scalars `bytes_` (slot -> value)."""
    builder.StartObject(fields)
    for slot, offset in offsets.items():
        builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, value in (bytes_ or {}).items():
        builder.PrependUint8Slot(slot, value, 0)
    return builder.EndObject()


def _input_tensor(builder: Any, spec: InputSpec, stats: tuple[float, float]) -> int:
    name, text = builder.CreateString("image"), builder.CreateString(f"Input image to be classified ({spec.color}).")
    colour = {v: k for k, v in COLOR_SPACES.items()}[spec.color]
    properties = _table(builder, 2, {}, {0: colour})
    content = _table(builder, 3, {1: properties}, {0: IMAGE_PROPERTIES})
    mean, std = _floats(builder, _listed(spec.mean)), _floats(builder, _listed(spec.std))
    options = _table(builder, 2, {0: mean, 1: std})
    unit = _table(builder, 2, {1: options}, {0: NORMALIZATION_OPTIONS})
    units = _offsets(builder, [unit])
    high, low = _floats(builder, [stats[1]]), _floats(builder, [stats[0]])
    statistics = _table(builder, 2, {0: high, 1: low})
    return _table(builder, 7, {0: name, 1: text, 3: content, 4: units, 5: statistics})


def _output_tensor(builder: Any, classes: int, stats: tuple[float, float]) -> int:
    name = builder.CreateString("probability")
    text = builder.CreateString(f"Probabilities of the {classes} labels (softmax scores, summing to 1).")
    file_name, file_text = builder.CreateString(LABELS_NAME), builder.CreateString("Labels for the classes.")
    label_file = _table(builder, 5, {0: file_name, 1: file_text}, {2: TENSOR_AXIS_LABELS})
    files = _offsets(builder, [label_file])
    content = _table(builder, 3, {1: _table(builder, 0, {})}, {0: FEATURE_PROPERTIES})
    high, low = _floats(builder, [stats[1]]), _floats(builder, [stats[0]])
    statistics = _table(builder, 2, {0: high, 1: low})
    return _table(builder, 7, {0: name, 1: text, 3: content, 5: statistics, 6: files})


def metadata_flatbuffer(card: ModelCard, input_type: str, output_type: str) -> bytes:
    """The ModelMetadata flatbuffer ("M001") for one variant; the stats follow MediaPipe's writer."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    if input_type == "uint8":
        input_stats = (0.0, 255.0)
    else:
        ends = normalized(np.array([[0.0] * card.input.channels, [255.0] * card.input.channels]), card.input.mean,
                          card.input.std)  # fmt: skip
        input_stats = (float(ends.min()), float(ends.max()))
    output_stats = (0.0, 255.0) if output_type == "uint8" else (0.0, 1.0)
    inputs = _offsets(builder, [_input_tensor(builder, card.input, input_stats)])
    outputs = _offsets(builder, [_output_tensor(builder, len(card.labels), output_stats)])
    subgraph = _table(builder, 10, {0: builder.CreateString("image_classifier"), 2: inputs, 3: outputs})
    strings = {
        slot: builder.CreateString(text)
        for slot, text in ((0, card.name), (1, card.description), (2, card.version), (4, AUTHOR))
    }
    root = _table(
        builder, 8, {**strings, 3: _offsets(builder, [subgraph]), 7: builder.CreateString(MIN_PARSER_VERSION)}
    )
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def embed(content: bytes, card: ModelCard) -> bytes:
    """`content` with TFLite metadata, edge-pipeline's input entry and the labels file; old ones replaced."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(content))  # inlines buffers stored after the flatbuffer
    graph = model.subgraphs[0]
    input_type = np.dtype(fb.type_to_name(graph.tensors[graph.inputs[0]].type).lower()).name
    output_type = np.dtype(fb.type_to_name(graph.tensors[graph.outputs[0]].type).lower()).name
    entries = {
        METADATA_NAME: metadata_flatbuffer(card, input_type, output_type),
        INPUT_SPEC_NAME: json.dumps(card.input.to_dict(), sort_keys=True).encode(),
    }
    model.metadata = model.metadata or []
    present = {_name(m): m for m in model.metadata}
    for name, data in entries.items():
        buffer = fb.schema_fb.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        if name in present:  # embedding again replaces the old entry in place
            model.buffers[present[name].buffer] = buffer
            continue
        model.buffers.append(buffer)
        entry = fb.schema_fb.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    stream = io.BytesIO(bytes(fb.convert_object_to_bytearray(model)))
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_NAME, "\n".join(card.labels) + "\n")
    return stream.getvalue()


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
