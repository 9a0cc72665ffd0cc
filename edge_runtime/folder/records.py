"""The typed records of metadata.json, and the one parser that checks every value of it.

metadata.json comes with a model folder, and a model folder is untrusted input: every number must be
finite and in range, every boolean a boolean, every checksum 64 hex digits, every file name one of the
folder's own (``model_<variant>.tflite`` for a variant), else one MetadataError line. No TensorFlow here:
the device reads these too, and ``pipeline.folder`` writes them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import MetadataError
from ..normalization import is_raw
from ..text import printable
from .values import _bad, _shown, boolean, choice, integer, number, obj, optional, sha256, string

SCHEMA_VERSION = 1
TASK = "image-classification"
METADATA_FILE = "metadata.json"
VARIANT_PREFIX = "model_"
VARIANT_SUFFIX = ".tflite"
COLORS = ("rgb", "grayscale")
RESIZES = ("stretch", "crop", "pad")  # edge_runtime.choices.Resize
INPUT_DTYPES = ("uint8", "int8", "float32", "float16")
TENSOR_DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64")
MAX_SIDE = 8192  # an image classifier's input side in pixels
MAX_NAME = 200
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # a file of the folder: no path, not hidden
VARIANT_FILE = re.compile(r"^model_[a-z0-9][a-z0-9.-]{0,63}\.tflite$")


def variant_filename(precision: str) -> str:
    """File name of a variant in a model folder: ``model_int8.tflite``, ``model_mediapipe-int8.tflite``."""
    return f"{VARIANT_PREFIX}{precision}{VARIANT_SUFFIX}"


@dataclass(frozen=True)
class InputSpec:
    """What a device does to an image before the model sees it.

    The image is converted to ``color``, brought to ``height`` x ``width`` as ``resize`` says (stretched,
    centre-cropped or padded by repeating its edges: `edge_runtime.images.fit`), inverted (255 - x) when
    ``invert`` is set, and fed as ``(pixels - mean) / std`` (`edge_runtime.normalization`): ``mean`` and ``std``
    are one number, or one per channel (RGB order). Models edge-pipeline trains, or imports from Keras, normalise
    inside the graph, so for them ``mean`` is 0 and ``std`` is 1: raw pixels.
    """

    height: int
    width: int
    channels: int
    color: str = "rgb"
    invert: bool = False
    dtype: str = "uint8"
    mean: float | tuple[float, ...] = 0.0
    std: float | tuple[float, ...] = 1.0
    resize: str = "stretch"  # Resize: folders written before it stretched

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def raw(self) -> bool:
        """True when the model takes the pixels as they are (mean 0, std 1)."""
        return is_raw(self.mean, self.std)

    @classmethod
    def from_dict(cls, data: Any, where: str = METADATA_FILE) -> InputSpec:
        """Parse and validate an ``input`` (or a variant's ``image``) block."""
        data = obj(data, where, "'input'")
        for key in ("height", "width", "channels"):
            if key not in data:
                raise MetadataError(f"{where}: 'input' has no {key!r}; the file is incomplete or damaged")
        spec = cls(
            height=integer(data["height"], where, "input.height", 1, MAX_SIDE),
            width=integer(data["width"], where, "input.width", 1, MAX_SIDE),
            channels=integer(data["channels"], where, "input.channels", 1, 3),
            color=choice(data.get("color", "rgb"), where, "input.color", COLORS),
            invert=boolean(data.get("invert", False), where, "input.invert"),
            dtype=choice(data.get("dtype", "uint8"), where, "input.dtype", INPUT_DTYPES),
            mean=_values(data.get("mean", 0.0), where, "input.mean", data["channels"]),
            std=_values(data.get("std", 1.0), where, "input.std", data["channels"], positive=True),
            resize=choice(data.get("resize", "stretch"), where, "input.resize", RESIZES),
        )
        if spec.channels == 2:
            raise _bad(where, "input.channels", "1 or 3", spec.channels)
        return spec


def _values(value: Any, where: str, name: str, channels: Any, positive: bool = False) -> float | tuple[float, ...]:
    """A normalization value: one number, or a list of one per channel (3 for RGB)."""
    if not isinstance(value, list | tuple):
        return number(value, where, name, positive)
    if channels != 3 or len(value) != 3:
        raise _bad(where, name, "a number, or a list of 3 for an RGB input", value)
    return tuple(number(v, where, name, positive) for v in value)


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
    def from_dict(cls, data: Any, where: str = METADATA_FILE, name: str = "tensor") -> TensorQuantization:
        data = obj(data, where, name)
        scale = number(data.get("scale", 0.0), where, f"{name}.scale")
        if scale < 0:
            raise _bad(where, f"{name}.scale", "0 or more", scale)
        return cls(
            choice(data.get("dtype"), where, f"{name}.dtype", TENSOR_DTYPES),
            scale,
            integer(data.get("zero_point", 0), where, f"{name}.zero_point", -(2**31), 2**31 - 1),
        )


def _names(value: Any, where: str, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and len(item) <= 64 for item in value):
        raise _bad(where, name, "a list of short strings", value)
    return list(value)


def _ops(value: Any, where: str, name: str) -> dict[str, int] | None:
    if value is None:
        return None
    ops = obj(value, where, name)
    return {
        string(op, where, name, 100): integer(version, where, f"{name}.{op}", 0, 10_000) for op, version in ops.items()
    }


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
        if not isinstance(precision, str) or not VARIANT_NAME.match(precision):
            raise _bad(where, "a variant's name", "lowercase letters, digits, '.' and '-'", precision)
        at = f"variants.{precision}"
        data = obj(data, where, at)
        if data.get("file") != variant_filename(precision):
            raise _bad(where, f"{at}.file", repr(variant_filename(precision)), data.get("file"))
        for key in ("bytes", "sha256", "input", "output"):
            if key not in data:
                raise MetadataError(f"{where}: {at} has no {key!r}; re-run `edge-pipeline convert`")
        return cls(
            precision=precision,
            file=variant_filename(precision),
            bytes=integer(data["bytes"], where, f"{at}.bytes", 0, 2**40),
            sha256=sha256(data["sha256"], where, f"{at}.sha256"),
            input=TensorQuantization.from_dict(data["input"], where, f"{at}.input"),
            output=TensorQuantization.from_dict(data["output"], where, f"{at}.output"),
            route=string(data.get("route", "unknown"), where, f"{at}.route", 200),
            io_type=optional(data.get("io_type"), string, where, f"{at}.io_type", 20),
            calibration_samples=optional(
                data.get("calibration_samples"), integer, where, f"{at}.calibration", 0, 2**31
            ),
            seconds=optional(data.get("seconds"), number, where, f"{at}.seconds"),
            min_runtime=optional(data.get("min_runtime"), string, where, f"{at}.min_runtime", 40),
            ops=_ops(data.get("ops"), where, f"{at}.ops"),
            settings=optional(data.get("settings"), obj, where, f"{at}.settings"),
            calibration=optional(data.get("calibration"), string, where, f"{at}.calibration", 40),
            mixed=optional(data.get("mixed"), obj, where, f"{at}.mixed"),
            targets=_names(data.get("targets"), where, f"{at}.targets"),
            image=optional(data.get("image"), InputSpec.from_dict, f"{where} ({at}.image)"),
        )


def _labels(value: Any, where: str, limit: int, chars: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise _bad(where, "'labels'", f"a list of at most {limit:,} strings", value)
    for label in value:
        string(label, where, "each label", chars)
    return list(value)


def _files(value: Any, where: str) -> dict[str, dict[str, Any]]:
    files = obj(value or {}, where, "'files'")
    for name, record in files.items():
        if not FILE_NAME.match(name):
            raise _bad(where, "a name in 'files'", "a plain file name of the folder", name)
        record = obj(record, where, f"files.{name}")
        integer(record.get("bytes"), where, f"files.{name}.bytes", 0, 2**40)
        sha256(record.get("sha256"), where, f"files.{name}.sha256")
    return files


def check_header(data: dict[str, Any], where: str) -> None:
    schema = data.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        raise MetadataError(
            f"{where}: written with schema {schema}, newer than this version understands "
            f"({SCHEMA_VERSION}); upgrade edge-pipeline/edge_runtime"
        )
    integer(schema, where, "'schema'", 1, SCHEMA_VERSION)
    task = data.get("task", TASK)
    if task != TASK:
        raise MetadataError(f"{where}: task is {_shown(task)}; only {TASK!r} models are supported")
    for key in ("name", "labels", "input", "dataset", "training"):
        if key not in data:
            raise MetadataError(f"{where}: metadata.json has no {key!r}; the file is incomplete or damaged")


SOURCE_KINDS = ("keras", "h5", "saved-model", "tflite", "tflite-quantized")
ACTIVATIONS = ("softmax", "logits")  # what the model's class output holds; logits get a softmax on read


@dataclass(frozen=True)
class SourceRecord:
    """Where an imported model came from (`edge-pipeline import`): its file, framework, the preprocessing it
    expects, which of its outputs is the class head, and the folder's file that stands for it (`reference`)."""

    kind: str
    file: str  # the source's own name (a file or a SavedModel folder), not a path
    sha256: str  # of the file; of the SavedModel's saved_model.pb
    framework: str
    version: str
    reference: str  # the folder's file every variant is measured against: model.keras or model_<variant>.tflite
    mean: float | tuple[float, ...] = 0.0  # the preprocessing the source expects, as stated
    std: float | tuple[float, ...] = 1.0
    bgr: bool = False
    output_index: int = 0  # which output (by the source's order) holds the classes
    outputs: int = 1
    activation: str = "softmax"  # what that output held in the source
    accuracy: float | None = None  # the source's own top-1 on the test split, measured at import
    test_images: int = 0

    to_dict = asdict

    @classmethod
    def from_dict(cls, data: Any, where: str = METADATA_FILE) -> SourceRecord:
        data = obj(data, where, "'source'")
        reference = string(data.get("reference"), where, "source.reference", 128)
        if reference != "model.keras" and not VARIANT_FILE.match(reference):
            raise _bad(where, "source.reference", "model.keras or a model_<variant>.tflite of the folder", reference)
        accuracy = optional(data.get("accuracy"), number, where, "source.accuracy")
        if accuracy is not None and not 0 <= accuracy <= 1:
            raise _bad(where, "source.accuracy", "between 0 and 1", accuracy)
        channels = 3 if isinstance(data.get("mean"), list | tuple) or isinstance(data.get("std"), list | tuple) else 1
        return cls(
            kind=choice(data.get("kind"), where, "source.kind", SOURCE_KINDS),
            file=printable(string(data.get("file"), where, "source.file", 255)),
            sha256=sha256(data.get("sha256"), where, "source.sha256"),
            framework=string(data.get("framework"), where, "source.framework", 40),
            version=string(data.get("version"), where, "source.version", 40),
            reference=reference,
            mean=_values(data.get("mean", 0.0), where, "source.mean", channels),
            std=_values(data.get("std", 1.0), where, "source.std", channels, positive=True),
            bgr=boolean(data.get("bgr", False), where, "source.bgr"),
            output_index=integer(data.get("output_index", 0), where, "source.output_index", 0, 1000),
            outputs=integer(data.get("outputs", 1), where, "source.outputs", 1, 1000),
            activation=choice(data.get("activation", "softmax"), where, "source.activation", ACTIVATIONS),
            accuracy=accuracy,
            test_images=integer(data.get("test_images", 0), where, "source.test_images", 0, 2**40),
        )


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
    device_picks: dict[str, str] = field(default_factory=dict)  # `report --device NAME`'s pick, by device name
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each stage consumed (pipeline's records)
    created_at: str = ""
    updated_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    source: SourceRecord | None = None  # an imported model's provenance (None: trained by edge-pipeline)
    activation: str = "softmax"  # the class output: softmax probabilities, or logits a reader makes them of

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "task": TASK,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "output": {"classes": len(self.labels), "activation": self.activation},
            **({"source": self.source.to_dict()} if self.source is not None else {}),
            "dataset": self.dataset,
            "training": self.training,
            "variants": {p: v.to_dict() for p, v in self.variants.items()},
            "conversion": self.conversion,
            "files": self.files,
            "recommended": self.recommended,
            **({"device_picks": self.device_picks} if self.device_picks else {}),
            **({"stages": self.stages} if self.stages else {}),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = METADATA_FILE, max_labels: int = 100_000) -> FolderMetadata:
        """Parse and check a metadata.json object; every problem is a one-line MetadataError."""
        data = obj(data, where, "metadata.json")
        check_header(data, where)
        name = string(data["name"], where, "'name'", MAX_NAME)
        if not name.strip() or any(c in name for c in "/\\\0"):
            raise _bad(where, "'name'", "a name without '/', '\\' or NUL", name)
        variants = obj(data.get("variants") or {}, where, "'variants'")
        recommended = data.get("recommended")
        if recommended is not None and (not isinstance(recommended, str) or not VARIANT_NAME.match(recommended)):
            raise _bad(where, "'recommended'", "a variant's name", recommended)
        versions = obj(data.get("versions") or {}, where, "'versions'")
        picks = obj(data.get("device_picks") or {}, where, "'device_picks'")
        for device, pick in picks.items():
            string(device, where, "a device's name", MAX_NAME)
            if not isinstance(pick, str) or not VARIANT_NAME.match(pick):
                raise _bad(where, f"device_picks.{device}", "a variant's name", pick)
        stages, output = (
            obj(data.get("stages") or {}, where, "'stages'"),
            obj(data.get("output") or {}, where, "'output'"),
        )
        for stage, record in stages.items():
            string(stage, where, "a stage's name", 40)
            obj(record, where, f"stages.{stage}")
        return cls(
            name=name,
            labels=_labels(data["labels"], where, max_labels, 1000),
            input=InputSpec.from_dict(data["input"], where),
            dataset=obj(data["dataset"], where, "'dataset'"),
            training=obj(data["training"], where, "'training'"),
            variants={p: VariantRecord.from_dict(p, v, where) for p, v in variants.items()},
            files=_files(data.get("files"), where),
            conversion=optional(data.get("conversion"), obj, where, "'conversion'"),
            recommended=recommended,
            device_picks=dict(picks),
            stages=dict(stages),
            created_at=string(data.get("created_at", ""), where, "'created_at'", 64),
            updated_at=string(data.get("updated_at", ""), where, "'updated_at'", 64),
            versions={str(k): string(v, where, f"versions.{k}", 100) for k, v in versions.items()},
            source=optional(data.get("source"), SourceRecord.from_dict, where),
            activation=choice(output.get("activation", "softmax"), where, "output.activation", ACTIVATIONS),
        )

    def variant_for_file(self, filename: str) -> VariantRecord | None:
        """The variant record that describes `filename`, if any."""
        return next((v for v in self.variants.values() if v.file == filename), None)
