"""Convert a model folder's Keras model to TFLite in every precision (`edge-pipeline convert`).

Route: the Keras model is exported once as a SavedModel (`model.export(dir)`) and each
precision is converted from it with `TFLiteConverter.from_saved_model`, builtin ops only so
every LiteRT / tflite-runtime build can run the result. `TFLiteConverter.from_keras_model`
is broken for Keras 3 in several TensorFlow releases, so it is not used. If the SavedModel
route fails for a precision, Keras' own `model.export(path, format="litert")` (Keras >= 3.13)
is tried with the same converter settings; the route taken is recorded per variant.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter, native_stderr_captured
from edge_runtime.errors import ModelError
from edge_runtime.model_folder import variant_filename
from edge_runtime.tflite_file import ModelRequirements, parse_version, read_requirements

from . import bundle
from .bundle import PRECISIONS, Metadata, ModelFolder, TensorInfo, VariantInfo
from .data import DataConfig, balanced_indices, load_dataset, model_input_array
from .errors import ConversionError, DataError, UsageError
from .progress import Reporter, SilentReporter
from .signals import InterruptLatch, interrupts_after_native_call

IO_TYPES = ("int8", "uint8", "float32")
ROUTES = ("auto", "saved-model", "keras-litert")
SAVED_MODEL = "saved-model"
KERAS_LITERT = "keras-litert"
MIN_CALIBRATION_SAMPLES = 10
# int8 ranges are calibrated on this many class-balanced training images by default, or on all of
# them when there are fewer (README's `--limit 200` quick runs have 179).
DEFAULT_CALIBRATION_SAMPLES = 300
# Converter flags that lower operator versions, added one after another until a variant runs on
# --target-runtime. Measured on the default cnn (TF 2.21): dynamic-range with per-channel dense
# weights needs runtime 2.17.0 (FULLY_CONNECTED v12); per-tensor dense weights need 2.4.0
# (FULLY_CONNECTED v9) at 178,392 instead of 179,144 bytes; per-tensor everywhere 2.3.0.
# float32 (1.11.0), float16 (1.15.0) and int8 (1.14.0) need nothing for tflite-runtime 2.14.
COMPATIBILITY_STEPS: dict[str, tuple[dict[str, Any], ...]] = {
    "dynamic": (
        {"_experimental_disable_per_channel_quantization_for_dense_layers": True},
        {"_experimental_disable_per_channel": True},
    ),
    "int8": (
        {"_experimental_disable_per_channel_quantization_for_dense_layers": True},
        {"_experimental_disable_per_channel": True},
    ),
}


@dataclass(frozen=True)
class ConvertConfig:
    """Which variants to make from a model folder, and how."""

    folder: Path
    precisions: tuple[str, ...] = PRECISIONS
    io_type: str = "int8"  # integer model's input/output type; uint8 is for Edge TPU-era tools
    calibration_samples: int | None = None  # None: DEFAULT_CALIBRATION_SAMPLES, or every training image if fewer
    route: str = "auto"
    data_path: Path | None = None  # where the training data is now, if it moved
    data_dir: Path | None = None
    target_runtime: str | None = None  # oldest TFLite runtime every variant must run on; None: the newest

    def __post_init__(self) -> None:
        if self.target_runtime is not None and len(parse_version(self.target_runtime)) < 2:
            raise UsageError(f"--target-runtime {self.target_runtime!r} is not a version like 2.14")
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown or not self.precisions:
            raise UsageError(
                f"unknown precision {', '.join(map(repr, unknown)) or '(none)'}; choose from {', '.join(PRECISIONS)}"
            )
        if self.io_type not in IO_TYPES:
            raise UsageError(f"--io-type {self.io_type!r} is not one of {', '.join(IO_TYPES)}")
        if self.route not in ROUTES:
            raise UsageError(f"--route {self.route!r} is not one of {', '.join(ROUTES)}")
        if self.calibration_samples is not None and self.calibration_samples < MIN_CALIBRATION_SAMPLES:
            raise UsageError(
                f"--calibration-samples {self.calibration_samples} is too few to calibrate int8 ranges; "
                f"use at least {MIN_CALIBRATION_SAMPLES} (a few hundred is typical)"
            )


@dataclass
class ConvertResult:
    """The variants written, with the route each took."""

    folder: Path
    variants: list[VariantInfo]
    fallbacks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # precisions that cannot run on --target-runtime, with why


def calibration_images(metadata: Metadata, config: ConvertConfig, recorded: dict[str, Any] | None = None) -> np.ndarray:
    """A class-balanced sample of the training split, preprocessed exactly as in training."""
    try:
        data = DataConfig.from_record(metadata.dataset, config.data_path, config.data_dir)
    except UsageError as error:
        raise DataError(f"int8 calibration needs the training data: {error}") from None
    try:
        dataset = load_dataset(data, metadata.input, recorded=recorded)
    except (DataError, UsageError) as error:
        raise DataError(
            f"int8 calibration needs the training data, which is not available: {error} "
            "(pass --data or --data-dir to say where it is now)"
        ) from None
    if len(dataset.train) == 0:
        raise DataError(f"{data.name}: the training split is empty, so there is nothing to calibrate int8 on")
    available = len(dataset.train)
    if config.calibration_samples is not None and config.calibration_samples > available:
        raise DataError(
            f"--calibration-samples {config.calibration_samples} is more than the {available} training images; "
            f"use {available} or fewer"
        )
    count = config.calibration_samples or min(DEFAULT_CALIBRATION_SAMPLES, available)
    chosen = balanced_indices(dataset.train.labels, count, seed=data.seed)
    return model_input_array(dataset.train.images[chosen], metadata.input)


def converter_settings(
    precision: str, io_type: str, calibration: np.ndarray | None, latch: InterruptLatch | None = None
) -> dict[str, Any]:
    """TFLiteConverter attributes for a precision (`target_spec` as a nested dict).

    With a `latch`, calibration stops feeding images once Ctrl-C has arrived, so an
    interrupted int8 conversion ends quickly instead of calibrating to the end.
    """
    import tensorflow as tf

    builtins = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    if precision == "float32":
        return {"target_spec": builtins}
    if precision == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {**builtins, "supported_types": [tf.float16]},
        }
    if precision == "dynamic":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": builtins}
    if calibration is None:
        raise ConversionError("int8 needs calibration images")

    def representative() -> Iterator[list[np.ndarray]]:
        for image in calibration:
            if latch is not None and latch.received:
                return
            yield [image[None].astype(np.float32)]

    io = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io_type]
    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": representative,
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        "inference_input_type": io,
        "inference_output_type": io,
    }


def apply_settings(converter: Any, settings: dict[str, Any]) -> Any:
    """Set converter_settings() on a TFLiteConverter; returns the converter."""
    for name, value in settings.items():
        if name == "target_spec":
            for key, item in value.items():
                setattr(converter.target_spec, key, item)
        else:
            setattr(converter, name, value)
    return converter


class ConversionRoutes:
    """The two ways from a Keras model to TFLite bytes; the SavedModel is exported once into `workdir`."""

    def __init__(self, model: Any, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self._saved_model: Path | None = None

    def saved_model(self, settings: dict[str, Any]) -> bytes:
        import tensorflow as tf

        if self._saved_model is None:
            self._saved_model = self.workdir / "saved_model"
            self.model.export(str(self._saved_model), format="tf_saved_model", verbose=False)
        return apply_settings(tf.lite.TFLiteConverter.from_saved_model(str(self._saved_model)), settings).convert()

    def keras_litert(self, settings: dict[str, Any]) -> bytes:
        target = self.workdir / f"keras_{len(list(self.workdir.glob('*.tflite')))}.tflite"
        self.model.export(str(target), format="litert", verbose=False, **settings)
        return target.read_bytes()

    def order(self, route: str) -> list[tuple[str, Callable[[dict[str, Any]], bytes]]]:
        both = [(SAVED_MODEL, self.saved_model), (KERAS_LITERT, self.keras_litert)]
        if route == "auto":
            return both
        return [r for r in both if r[0] == route]


def _first_line(error: BaseException, native: list[str]) -> str:
    for text in [str(error), *reversed(native)]:
        for line in text.splitlines():
            if "error" in line.lower() and line.strip():
                return line.strip()[:200]
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def _tensor_info(details: dict[str, Any]) -> TensorInfo:
    return TensorInfo.of(details)


@dataclass(frozen=True)
class Converted:
    """One precision's TFLite bytes and how they were made."""

    content: bytes
    route: str
    failures: list[str]
    requirements: ModelRequirements
    settings: dict[str, Any]  # compatibility flags added for --target-runtime


def _convert_once(
    routes: ConversionRoutes,
    precision: str,
    config: ConvertConfig,
    calibration: np.ndarray | None,
    extra: dict[str, Any],
) -> tuple[bytes, str, list[str]]:
    """Try the routes in order; the first that converts wins. Ctrl-C ends calibration quickly."""
    failures: list[str] = []
    for route, attempt in routes.order(config.route):
        with interrupts_after_native_call() as latch, native_stderr_captured() as native:
            try:
                return (
                    attempt({**converter_settings(precision, config.io_type, calibration, latch), **extra}),
                    route,
                    failures,
                )
            except Exception as error:  # noqa: BLE001 - the converter raises anything
                if latch.received:
                    break  # interrupted, not failed: the latch raises KeyboardInterrupt
                failures.append(f"{route}: {_first_line(error, native)}")
    raise ConversionError(f"{precision}: TensorFlow could not convert the model ({'; '.join(failures)})")


def convert_variant(
    routes: ConversionRoutes, precision: str, config: ConvertConfig, calibration: np.ndarray | None
) -> Converted:
    """Convert one precision; for --target-runtime, add COMPATIBILITY_STEPS until its ops are old enough."""
    steps = list(COMPATIBILITY_STEPS.get(precision, ()))
    extra: dict[str, Any] = {}
    while True:
        content, route, failures = _convert_once(routes, precision, config, calibration, extra)
        needs = read_requirements(content, precision)
        if config.target_runtime is None or needs.runs_on(config.target_runtime) or not steps:
            return Converted(content, route, failures, needs, extra)
        extra = {**extra, **steps.pop(0)}


def _variant_info(
    converted: Converted,
    precision: str,
    staged: Path,
    record: dict[str, Any],
    config: ConvertConfig,
    calibrated: int | None,
    seconds: float,
) -> VariantInfo:
    try:
        interpreter, _ = load_interpreter(staged)
    except ModelError as error:
        raise ConversionError(f"{precision}: the converted model does not load in edge_runtime: {error}") from None
    return VariantInfo(
        precision=precision,
        file=variant_filename(precision),
        bytes=record["bytes"],
        sha256=record["sha256"],
        input=_tensor_info(interpreter.get_input_details()[0]),
        output=_tensor_info(interpreter.get_output_details()[0]),
        route=converted.route,
        io_type=config.io_type if precision == "int8" else None,
        calibration_samples=calibrated if precision == "int8" else None,
        seconds=round(seconds, 2),
        min_runtime=converted.requirements.min_runtime,
        ops=converted.requirements.ops,
        settings=converted.settings or None,
    )


def _too_new(precision: str, needs: ModelRequirements, target: str) -> str:
    tried = " even with per-tensor weights" if precision in COMPATIBILITY_STEPS else ""
    return (
        f"{precision}: skipped, it needs TFLite runtime {needs.min_runtime}{tried} "
        f"(ops {', '.join(f'{op} v{v}' for op, v in needs.ops.items())}), newer than --target-runtime {target}"
    )


def convert(config: ConvertConfig, reporter: Reporter | None = None) -> ConvertResult:
    """Write `model_<precision>.tflite` for each precision and record them in metadata.json."""
    reporter = reporter or SilentReporter()
    start = time.perf_counter()
    folder = ModelFolder(config.folder)
    metadata = folder.load()
    keras_path = folder.verified(bundle.KERAS_FILE, metadata)
    calibration = None
    if "int8" in config.precisions:
        calibration = calibration_images(metadata, config, folder.recorded_split(metadata))
        reporter.status(f"int8: calibrating on {len(calibration)} class-balanced training images")

    import keras

    model = keras.models.load_model(keras_path, compile=False)
    result = ConvertResult(folder.path, [])
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-convert-") as workdir, folder.transaction() as tx:
        routes = ConversionRoutes(model, Path(workdir))
        with reporter.task("converting", total=len(config.precisions)) as task:
            for done, precision in enumerate(config.precisions):
                task.update(done, note=precision)
                began = time.perf_counter()
                converted = convert_variant(routes, precision, config, calibration)
                if converted.failures:
                    result.fallbacks.append(f"{precision}: {converted.failures[0]}; used {converted.route}")
                    reporter.status(f"{precision}: {converted.failures[0]}; fell back to {converted.route}")
                name = variant_filename(precision)
                if config.target_runtime and not converted.requirements.runs_on(config.target_runtime):
                    result.skipped.append(_too_new(precision, converted.requirements, config.target_runtime))
                    reporter.status(result.skipped[-1])
                    tx.remove(name)  # an older file of this precision would not run there either
                    metadata.variants.pop(precision, None)
                    continue
                staged = tx.write_bytes(name, converted.content)
                variant = _variant_info(
                    converted,
                    precision,
                    staged,
                    tx.record(name),
                    config,
                    len(calibration) if calibration is not None else None,
                    time.perf_counter() - began,
                )
                result.variants.append(variant)
                metadata.variants[precision] = variant
                task.update(done + 1, note=precision)
        metadata.conversion = {
            "routes": {v.precision: v.route for v in metadata.variants.values()},
            "fallbacks": result.fallbacks,
            "target_runtime": config.target_runtime,
            "skipped": result.skipped,
            "versions": {name: _version(name) for name in ("tensorflow", "keras", "ai-edge-litert")},
        }
        metadata.variants = {p: metadata.variants[p] for p in PRECISIONS if p in metadata.variants}
        tx.commit(metadata)
    result.seconds = time.perf_counter() - start
    return result


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
