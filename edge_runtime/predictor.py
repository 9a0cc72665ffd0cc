"""The on-device image classifier: load a .tflite model, feed it images, get top-k labels."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import safe_files
from .backends import AUTO, Backend, get_backend, invoke, load_interpreter, native_stderr_captured
from .errors import LabelsError, MetadataError, ModelError, RuntimeTooOldError, UsageError
from .folder import reader as model_folder
from .folder.selection import ModelChoice, requirements, resolve_model, resolve_variant
from .images import ImageSource, draft_mode, load_image, prepare_pixels, to_eight_bit
from .input_check import InputWatch, TrainingImages
from .limits import MAX_EVERY, flag, optional_threads, real_number, whole_number
from .normalization import Values, normalized, per_channel

__all__ = ["Classification", "Predictor", "fit_labels", "requirements", "resolve_model"]
from .folder.reader import InputSpec, TensorQuantization
from .text import printable
from .tflite.metadata import read_embedded
from .tflite.requirements import read_requirements

MAX_BATCH = 64
# What a float input without a stated normalization is refused with (it is never guessed).
NORMALIZATION_CHOICES = (
    "--input-mean 0 --input-std 255 for inputs in [0, 1], --input-mean 127.5 --input-std 127.5 for [-1, 1], "
    "--input-mean 0 --input-std 1 for raw pixels (0..255); per channel: --input-mean 123.675,116.28,103.53 "
    "--input-std 58.395,57.12,57.375 (ImageNet)"
)


@dataclass(frozen=True)
class Classification:
    """One of the top-k answers for an image."""

    label: str
    index: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "score": self.score}


def fit_labels(labels: list[str], num_classes: int, where: str) -> list[str]:
    """Match a label list to the outputs; a leading 'background' line one too many is dropped."""
    if len(labels) == num_classes:
        return labels
    if len(labels) == num_classes + 1:
        return labels[1:]
    raise LabelsError(
        f"{where}: has {len(labels)} labels but the model has {num_classes} outputs; use the labels file that came "
        "with the model"
    )


class Predictor:
    """Classify images with a TFLite model, using the model folder's metadata when there is one.

    ``model_path`` is a ``.tflite`` file or a model folder. A file's own TFLite metadata (labels,
    colour space, normalization) serves when no metadata.json describes it. Without either, the input size,
    channels and dtype come from the model; a float input then needs ``input_mean`` and ``input_std``
    (``(pixel - input_mean) / input_std``, one value or one per channel): it is refused rather than guessed
    (a [0, 1] model fed label_image's [-1, 1] called every image "Sandal"). Quantized inputs get raw pixels,
    as their quantization parameters define, unless a mean and std are given.
    """

    def __init__(
        self,
        model_path: str | Path,
        labels: str | Path | Sequence[str] | None = None,
        threads: int | None = None,
        backend: str = AUTO,
        input_mean: Values | None = None,
        input_std: Values | None = None,
        invert: bool | None = None,
        verify: bool = True,
    ) -> None:
        threads = optional_threads(threads)
        input_mean, input_std, invert = _checked_inputs(input_mean, input_std, invert, labels, backend, verify)
        self.backend = get_backend(backend)
        choice = resolve_model(Path(model_path), self.backend, verify)
        self.interpreter, choice = self._load(choice, threads, verify)
        self.model_path, self.folder, self.metadata, self.choice_note = (
            choice.path,
            choice.folder,
            choice.metadata,
            choice.note,
        )
        self.threads = threads
        self._input, self._output = self._check_signature()
        self.input_quantization = TensorQuantization.of(self._input)
        self.output_quantization = TensorQuantization.of(self._output)
        self.content = choice.content  # the checked bytes the interpreter runs (it keeps them alive anyway)
        self.embedded, embedded_problem = read_embedded(choice.content, str(self.model_path))
        self.warnings = [embedded_problem] if embedded_problem else []
        self.spec = self._input_spec(input_mean, input_std, invert)
        self.assumptions = self._assumptions(input_mean, input_std)
        # label_image feeds raw pixels to quantized models; only explicit normalisation changes that.
        # MediaPipe does the same with a uint8 input whatever the file's normalization says; edge-pipeline's own
        # files (metadata.json or its embedded input entry) are fed by their recorded quantization instead.
        ours = self.metadata is not None or (self.embedded is not None and self.embedded.input_spec is not None)
        self._raw_quantized_input = not ours and input_mean is None and input_std is None
        self.labels = self._labels(labels)
        training = TrainingImages.from_record(self.metadata.dataset) if self.metadata is not None else None
        name = self.metadata.name if self.metadata is not None else "the model"
        self.input_watch = InputWatch(training, printable(name)) if training is not None else None
        self._batchable = int(self._input.get("shape_signature", self._input["shape"])[0]) == -1
        self._batch = int(self._input["shape"][0])

    def _load(self, choice: ModelChoice, threads: int | None, verify: bool) -> tuple[Any, ModelChoice]:
        """Load the chosen file; if the interpreter still lacks an op version, the folder's next variant."""
        try:
            interpreter, _ = load_interpreter(choice.path, threads, self.backend.name, content=choice.content)
        except RuntimeTooOldError as error:
            if not choice.fallbacks:
                raise
            refused = str(error).split(": ", 1)[-1].split(";")[0]
            nxt = replace(
                resolve_variant(choice.path.parent, choice.fallbacks[0], verify),
                fallbacks=choice.fallbacks[1:],
                note=f"using {choice.fallbacks[0]}: {choice.path.name} {refused}",
            )
            return self._load(nxt, threads, verify)
        return interpreter, choice

    @property
    def variant(self) -> str | None:
        """The precision of the running file when its folder's metadata describes it."""
        found = self.metadata.variant_for_file(self.model_path.name) if self.metadata else None
        return found.precision if found else None

    @property
    def num_classes(self) -> int:
        return int(np.prod(self._output["shape"][1:]))

    @property
    def input_details(self) -> dict[str, Any]:
        return self._input

    @property
    def output_details(self) -> dict[str, Any]:
        return self._output

    def _check_signature(self) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        where = str(self.model_path)
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{where}: has {len(inputs)} inputs and {len(outputs)} outputs; "
                "edge_runtime runs image classifiers (one image in, one score vector out)"
            )
        shape = list(inputs[0]["shape"])
        if len(shape) != 4 or shape[3] not in (1, 3):
            raise ModelError(f"{where}: input shape {shape} is not an image batch (N, height, width, 1 or 3)")
        out_shape = list(outputs[0]["shape"])
        if len(out_shape) < 2 or int(np.prod(out_shape[1:])) != max(out_shape[1:]) or max(out_shape[1:]) < 2:
            raise ModelError(f"{where}: output shape {out_shape} is not a vector of class scores")
        for details in (inputs[0], outputs[0]):
            if np.dtype(details["dtype"]) not in (np.float32, np.float16, np.int8, np.uint8):
                raise ModelError(
                    f"{where}: tensor {details['name']!r} has dtype {np.dtype(details['dtype'])}, which edge_runtime "
                    "does not feed"
                )
        return inputs[0], outputs[0]

    def _input_spec(self, input_mean: float | None, input_std: float | None, invert: bool | None) -> InputSpec:
        _, height, width, channels = (int(v) for v in self._input["shape"])
        record = self.metadata.variant_for_file(self.model_path.name) if self.metadata is not None else None
        if self.metadata is not None:
            spec = record.input_spec(self.metadata.input) if record is not None else self.metadata.input
        elif self.embedded is not None and (self.embedded.normalization or self.embedded.input_spec):
            spec = self.embedded.spec(height, width, channels, np.dtype(self._input["dtype"]).name)
        else:
            if not self.input_quantization.quantized and input_mean is None and input_std is None:
                raise UsageError(
                    f"{self.model_path}: a float input, and no metadata.json or TFLite metadata says how to normalize "
                    f"the pixels; say what the model expects: {NORMALIZATION_CHOICES}"
                )
            color = "grayscale" if channels == 1 else "rgb"
            spec = InputSpec(height, width, channels, color=color, dtype=np.dtype(self._input["dtype"]).name)
        if (spec.height, spec.width, spec.channels) != (height, width, channels):  # metadata.json or embedded
            where = f"{self.folder}/metadata.json" if self.metadata is not None else f"{self.model_path}'s metadata"
            raise MetadataError(
                f"{where}: input {spec.height}x{spec.width}x{spec.channels} does not match the model's "
                f"{height}x{width}x{channels}"
            )
        overrides: dict[str, Any] = {}
        for key, value in (("mean", input_mean), ("std", input_std)):
            if value is not None:
                overrides[key] = value if isinstance(value, tuple) else float(value)
                if isinstance(value, tuple):
                    per_channel(value, channels)  # one value per channel of the model's input, else UsageError
        if invert is not None:
            overrides["invert"] = bool(invert)
        return InputSpec(**{**spec.to_dict(), **overrides}) if overrides else spec

    def _assumptions(self, input_mean: float | None, input_std: float | None) -> list[str]:
        """One line for each guess made about a model without metadata (the CLI prints them as warnings)."""
        if self.metadata is not None or input_mean is not None or input_std is not None:
            return []
        if self.embedded is not None and (self.embedded.normalization or self.embedded.input_spec):
            return []
        how = "feeding raw pixels (0..255) to its quantized input; pass --input-mean/--input-std if it expects others"
        return [f"{self.model_path.name} has no metadata.json beside it and no labels or normalization inside: {how}"]

    def _labels(self, labels: str | Path | Sequence[str] | None) -> list[str]:
        if labels is None and self.metadata is not None and self.metadata.labels:
            return fit_labels(list(self.metadata.labels), self.num_classes, f"{self.folder}/metadata.json")
        if labels is None and self.embedded is not None and self.embedded.labels:
            return fit_labels(self.embedded.labels, self.num_classes, f"{self.model_path}'s embedded labels")
        beside = (self.folder or self.model_path.parent) / model_folder.LABELS_FILE
        if labels is None and beside.exists():
            # the folder's, or a labels.txt copied next to a bare .tflite: never one that leads out of the folder
            labels = safe_files.inside(beside.parent, beside.name, "labels file", LabelsError)
        if labels is None:
            return [str(index) for index in range(self.num_classes)]
        if isinstance(labels, (str, Path)):
            return fit_labels(model_folder.read_labels(Path(labels)), self.num_classes, str(labels))
        return fit_labels([str(label) for label in labels], self.num_classes, "labels")

    def preprocess(self, image: ImageSource) -> np.ndarray:
        """Model pixels (height, width, channels) uint8 for one image; bad input raises ImageError."""
        decoded = to_eight_bit(load_image(image, self.spec, self.decode_mode))
        pixels = prepare_pixels(decoded, self.spec)
        if self.input_watch is not None:
            self.input_watch.see(decoded, pixels)
        return pixels

    def stream(
        self, source: Any, top_k: int = 5, every: int = 1, latest: bool = False, max_frame_bytes: int | None = None
    ) -> Iterator[Any]:
        """One `live.FrameResult` per frame of `source`, as they come: a binary file object (Motion JPEG or
        PNG frames, e.g. a camera's pipe), an iterable of bytes (whole images or chunks of a stream), or of PIL
        images or arrays. `latest`: keep only the newest frame while the model is busy (a live camera);
        `every`: classify one frame in N."""
        from .stream.frames import MAX_FRAME_BYTES, check_frame_cap
        from .stream.live import results

        top_k, every = whole_number(top_k, "top_k", 1), whole_number(every, "every", 1, MAX_EVERY)
        cap = MAX_FRAME_BYTES if max_frame_bytes is None else check_frame_cap(max_frame_bytes)
        return results(self, source, top_k, every, flag(latest, "latest"), cap)

    @property
    def decode_mode(self) -> str:
        """The mode JPEGs are decoded to: the model's (draft_mode), in colour while the input check needs it."""
        watching = self.input_watch is not None and self.input_watch.wants_colour
        return "RGB" if watching else draft_mode(self.spec)

    def input_note(self) -> str | None:
        """Once, when the images preprocessed so far are far from the training images: one line saying how."""
        return self.input_watch.note() if self.input_watch is not None else None

    def _to_input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        quant = self.input_quantization
        if quant.quantized and self._raw_quantized_input:
            values = pixels.astype(np.int32)
            if quant.dtype == "int8":
                values = values - 128  # int8 counterpart of feeding raw uint8 pixels
            return values.astype(quant.dtype)
        raw_pixels = self.spec.raw
        if not quant.quantized and raw_pixels:
            return pixels.astype(quant.dtype)  # our float models take raw pixels: nothing to compute
        info = np.iinfo(quant.dtype) if quant.quantized else None
        if info is not None and raw_pixels and quant.scale == 1.0:
            # our int8 models: the input quantization is a plain shift of the pixel values
            whole = pixels if np.issubdtype(pixels.dtype, np.integer) else np.rint(pixels)
            return np.clip(whole.astype(np.int16) + quant.zero_point, info.min, info.max).astype(quant.dtype)
        real = normalized(pixels, self.spec.mean, self.spec.std)
        if info is None:
            return real.astype(quant.dtype)
        q = np.round(real / np.float32(quant.scale)) + quant.zero_point
        return np.clip(q, info.min, info.max).astype(quant.dtype)

    def _from_output_tensor(self, raw: np.ndarray) -> np.ndarray:
        quant = self.output_quantization
        values = raw.astype(np.float32)
        if quant.quantized:
            values = (values - quant.zero_point) * np.float32(quant.scale)
        values = values.reshape(values.shape[0], -1)
        logits = self.metadata is not None and self.metadata.activation == "logits"
        if values.size and (logits or values.min() < -1e-3 or values.max() > 1 + 1e-3):
            shifted = np.exp(values - values.max(axis=1, keepdims=True))  # logits: make probabilities
            values = shifted / shifted.sum(axis=1, keepdims=True)
        return np.clip(values, 0.0, 1.0)

    def _ensure_batch(self, size: int) -> None:
        if size != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [size, *self._input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._batch = size

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        self._ensure_batch(tensor.shape[0])
        self.interpreter.set_tensor(self._input["index"], tensor)
        invoke(self.interpreter, self.model_path)
        return self.interpreter.get_tensor(self._output["index"]).copy()

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for model pixels (N, height, width, channels).

        Models with a dynamic batch dimension run in batches of up to MAX_BATCH images per
        invoke(); fixed-batch models run one image at a time.
        """
        pixels = np.asarray(pixels)
        expected = (self.spec.height, self.spec.width, self.spec.channels)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise UsageError(f"scores() needs pixels shaped (N, {', '.join(map(str, expected))}); got {pixels.shape}")
        step = MAX_BATCH if self._batchable else 1
        chunks = [
            self._from_output_tensor(self._run(self._to_input_tensor(pixels[start : start + step])))
            for start in range(0, len(pixels), step)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.num_classes), np.float32)

    def top_k(self, scores: np.ndarray, k: int = 5) -> list[Classification]:
        """The k best classes of one score vector, best first."""
        k = whole_number(k, "top_k", 1)
        order = np.argsort(-scores, kind="stable")[: min(k, len(scores))]
        return [Classification(self.labels[i], int(i), float(scores[i])) for i in order]

    def predict(self, image: ImageSource, top_k: int = 5) -> list[Classification]:
        """Top-k classes for one image (a path, a PIL image or an array)."""
        return self.predict_batch([image], top_k)[0]

    def predict_batch(self, images: Sequence[ImageSource], top_k: int = 5) -> list[list[Classification]]:
        """Top-k classes for many images; the first bad image raises ImageError naming it."""
        top_k = whole_number(top_k, "top_k", 1)
        if not images:
            return []
        pixels = np.stack([self.preprocess(image) for image in images])
        return [self.top_k(row, top_k) for row in self.scores(pixels)]

    def describe(self) -> dict[str, Any]:
        """What `edge-runtime info` shows: tensors, quantization, op count, metadata."""

        def tensor(details: dict[str, Any]) -> dict[str, Any]:
            quant = TensorQuantization.of(details)
            return {
                "name": details["name"],
                "shape": [int(v) for v in details.get("shape_signature", details["shape"])],
                "dtype": quant.dtype,
                "quantization": {"scale": quant.scale, "zero_point": quant.zero_point} if quant.quantized else None,
            }

        ops = _op_counts(self.backend, self.content)
        return {
            "model": str(self.model_path),
            "bytes": self.model_path.stat().st_size,
            "backend": self.backend.label,
            "runtime": self.backend.runtime_version,
            "requirements": read_requirements(self.content, str(self.model_path)).to_dict(),
            "inputs": [tensor(self._input)],
            "outputs": [tensor(self._output)],
            "ops": sum(ops.values()),
            "op_types": ops,
            "labels": len(self.labels),
            "input_spec": self.spec.to_dict(),
            "metadata": self.metadata.to_dict() if self.metadata else None,
            "embedded_metadata": self.embedded.to_dict() if self.embedded else None,
        }


def _values(value: Any, name: str) -> Values | None:
    """A mean or std: one finite number, or one per channel."""
    if value is None:
        return None
    if isinstance(value, tuple | list):
        return tuple(real_number(v, name) for v in value)
    return real_number(value, name)


def _checked_inputs(
    mean: Any, std: Any, invert: Any, labels: Any, backend: Any, verify: Any
) -> tuple[Values | None, Values | None, bool | None]:
    """Predictor's arguments of the wrong type or value as one UsageError line naming the argument."""
    mean, std = _values(mean, "input_mean"), _values(std, "input_std")
    if std is not None and not all(v > 0 for v in (std if isinstance(std, tuple) else (std,))):
        raise UsageError(f"input_std must be above 0, got {std}")
    if not isinstance(backend, str):
        raise UsageError(f"backend must be a name such as 'auto', got {type(backend).__name__}")
    if labels is not None and not isinstance(labels, str | Path | list | tuple):
        raise UsageError(f"labels must be a labels file or a list of labels, got {type(labels).__name__}")
    flag(verify, "verify")
    return mean, std, None if invert is None else flag(invert, "invert")


def _op_counts(backend: Backend, content: bytes) -> dict[str, int]:
    """Count the model's operators by type, before any delegate fuses them (empty if unknown)."""
    module = sys.modules.get(backend.interpreter_class.__module__)
    resolver = getattr(module, "OpResolverType", None)
    options = {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if resolver else {}
    try:
        with native_stderr_captured():
            plain = backend.interpreter_class(model_content=content, **options)
            details = plain._get_ops_details()  # noqa: SLF001 - the only op listing the Python API offers
    except Exception:  # noqa: BLE001 - optional information
        return {}
    counts: dict[str, int] = {}
    for op in details:
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
