"""The conversion core, with no model folder: a Recipe per precision and a Converter from Keras to TFLite bytes.

Route: the Keras model is exported once as a SavedModel and each precision is converted from it
with `TFLiteConverter.from_saved_model`, builtin ops only so every LiteRT / tflite-runtime build
can run the result. `TFLiteConverter.from_keras_model` is broken for Keras 3 in several TensorFlow
releases, so it is not used. If the SavedModel route fails, Keras' own
`model.export(path, format="litert")` (Keras >= 3.13) is tried with the same settings.

Integer recipes calibrated our way (`--calibration min-max|moving-average`) and the `mixed` precision
go another route: the float32 model is converted once as above and quantized by litert-quantizer
(`pipeline.conversion.quantizer`; `pipeline.conversion.mixed` searches which ops stay float).

A recipe states its converter settings once, in the form Keras' litert exporter takes as keyword
arguments (attributes, with `target_spec` as a nested dict); `Recipe.configure` applies them to a
`TFLiteConverter` the same way, so both routes convert with the same settings.
`pipeline.conversion.stage` stages the results in a model folder; the benchmark suite calls this directly.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import native_stderr_captured
from edge_runtime.choices import Calibration, IoType, Precision, Route
from edge_runtime.tflite.requirements import ModelRequirements, read_requirements

from ..errors import ConversionError
from ..progress import Reporter, SilentReporter
from ..signals import InterruptLatch, interrupts_after_native_call
from . import layer_error, mixed, quantizer
from .mixed import MixedTarget

# Converter flags that lower operator versions, added one after another until a variant runs on
# --target-runtime. Measured on the default cnn (TF 2.21): dynamic-range with per-channel dense
# weights needs runtime 2.17.0 (FULLY_CONNECTED v12); per-tensor dense weights need 2.4.0
# (FULLY_CONNECTED v9) at 178,392 instead of 179,144 bytes; per-tensor everywhere 2.3.0.
# float32 (1.11.0), float16 (1.15.0) and int8 (1.14.0) need nothing for tflite-runtime 2.14.
COMPATIBILITY_STEPS: dict[Precision, tuple[dict[str, Any], ...]] = {
    Precision.DYNAMIC: (
        {"_experimental_disable_per_channel_quantization_for_dense_layers": True},
        {"_experimental_disable_per_channel": True},
    ),
    Precision.INT8: (
        {"_experimental_disable_per_channel_quantization_for_dense_layers": True},
        {"_experimental_disable_per_channel": True},
    ),
}


# The library that quantizes int8 and mixed from the float32 conversion: litert-quantizer, the maintained
# continuation of ai-edge-quantizer (the same API under `litert_quantizer`; ai-edge-quantizer's nightly page says
# it is no longer maintained). Folders converted before record "+ai-edge-quantizer" in their routes.
QUANTIZER = "litert-quantizer"
# How int8 ranges are calibrated unless --calibration says otherwise; chosen by measurement (see
# pipeline.conversion.quantizer and benchmarks/results): min-max equals the TF converter on the cnn and beats it on
# the 32 px MobileNetV2, and AEQ's moving average narrows ranges enough to cost agreement.
DEFAULT_CALIBRATION = Calibration.MIN_MAX
# Calibration images the per-layer error is measured on (the first of the calibration set).
LAYER_ERROR_IMAGES = 100


@dataclass(frozen=True)
class Recipe:
    """How to make one precision (as MediaPipe Model Maker's `QuantizationConfig.for_int8()`)."""

    precision: Precision
    io_type: IoType = IoType.INT8  # the int8 variant's input/output type
    flags: tuple[tuple[str, Any], ...] = ()  # converter attributes beyond the precision's own
    calibration: Calibration = DEFAULT_CALIBRATION
    target: MixedTarget = field(default_factory=MixedTarget)  # what `mixed` must meet

    @classmethod
    def for_precision(
        cls,
        precision: Precision | str,
        io_type: IoType | str = IoType.INT8,
        calibration: Calibration | str = DEFAULT_CALIBRATION,
        target: MixedTarget | None = None,
    ) -> Recipe:
        return cls(Precision(precision), IoType(io_type), (), Calibration(calibration), target or MixedTarget())

    @property
    def needs_calibration(self) -> bool:
        return self.precision in (Precision.INT8, Precision.MIXED)

    @property
    def calibrated_by(self) -> Calibration:
        """How this recipe's ranges are really estimated: mixed under `tf` takes min-max, the same estimator."""
        if self.quantizer and self.calibration is Calibration.TF:
            return Calibration.MIN_MAX
        return self.calibration if self.quantizer else Calibration.TF

    @property
    def quantizer(self) -> bool:
        """True when litert-quantizer makes this variant from the float32 model.

        The TF converter does int8 with TF calibration, other I/O types (AEQ writes int8 I/O) and
        any --target-runtime compatibility flags (AEQ has no per-tensor switch).
        """
        if self.precision is Precision.MIXED:
            return True
        tf_only = self.calibration is Calibration.TF or self.io_type is not IoType.INT8 or bool(self.flags)
        return self.precision is Precision.INT8 and not tf_only

    @property
    def compatibility_steps(self) -> tuple[dict[str, Any], ...]:
        return COMPATIBILITY_STEPS.get(self.precision, ())

    def with_flags(self, extra: dict[str, Any]) -> Recipe:
        return replace(self, flags=tuple({**dict(self.flags), **extra}.items()))

    def attributes(self, calibration: np.ndarray | None, latch: InterruptLatch | None = None) -> dict[str, Any]:
        """Converter attributes in Keras' exporter form. With a `latch`, calibration stops at Ctrl-C."""
        import tensorflow as tf

        builtins = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
        optimize = {"optimizations": [tf.lite.Optimize.DEFAULT]}
        if self.precision is Precision.MIXED:
            raise ConversionError("mixed is made by litert-quantizer, not by TFLiteConverter settings")
        if self.precision is Precision.FLOAT32:
            own: dict[str, Any] = {"target_spec": builtins}
        elif self.precision is Precision.FLOAT16:
            own = {**optimize, "target_spec": {**builtins, "supported_types": [tf.float16]}}
        elif self.precision is Precision.DYNAMIC:
            own = {**optimize, "target_spec": builtins}
        else:
            if calibration is None:
                raise ConversionError("int8 needs calibration images")
            io = {IoType.INT8: tf.int8, IoType.UINT8: tf.uint8, IoType.FLOAT32: tf.float32}[self.io_type]
            own = {
                **optimize,
                "representative_dataset": _representative(calibration, latch),
                "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                "inference_input_type": io,
                "inference_output_type": io,
            }
        return {**own, **dict(self.flags)}

    def configure(self, converter: Any, calibration: np.ndarray | None, latch: InterruptLatch | None = None) -> Any:
        """Set this recipe's attributes on a TFLiteConverter, as Keras' exporter does; returns it."""
        for name, value in self.attributes(calibration, latch).items():
            if name == "target_spec":
                for key, item in value.items():
                    setattr(converter.target_spec, key, item)
            else:
                setattr(converter, name, value)
        return converter


def _representative(calibration: np.ndarray, latch: InterruptLatch | None) -> Callable[[], Iterator[list[np.ndarray]]]:
    def representative() -> Iterator[list[np.ndarray]]:
        for image in calibration:
            if latch is not None and latch.received:
                return
            yield [image[None].astype(np.float32)]

    return representative


@dataclass(frozen=True)
class Conversion:
    """One precision's TFLite bytes and what happened on the way."""

    content: bytes
    recipe: Recipe
    route: str  # the Route taken, plus "+litert-quantizer" when it quantized the float32 result
    failures: list[str] = field(default_factory=list)  # routes that failed before `route` worked
    requirements: ModelRequirements = field(default_factory=lambda: ModelRequirements(None))
    details: dict[str, Any] = field(default_factory=dict)  # what a search chose (mixed), for metadata.json


def _first_line(error: BaseException, native: list[str]) -> str:
    for text in [str(error), *reversed(native)]:
        for line in text.splitlines():
            if "error" in line.lower() and line.strip():
                return line.strip()[:200]
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


class Converter:
    """Turns one Keras model into TFLite bytes per recipe; the SavedModel is exported once into `workdir`.

    `selection` (validation images, preprocessed) is what the `mixed` search scores candidates on.
    """

    def __init__(
        self, model: Any, workdir: Path, selection: np.ndarray | None = None, reporter: Reporter | None = None
    ) -> None:
        self.model = model
        self.workdir = workdir
        self.selection = selection
        self.reporter = reporter or SilentReporter()
        self._saved_model: Path | None = None
        self._float: dict[Route, Conversion] = {}
        self._ranges: dict[tuple[Calibration, str], quantizer.Ranges] = {}

    def reference_scores(self, images: np.ndarray) -> np.ndarray:
        """What every variant is measured against on model input: the Keras model's scores."""
        return np.asarray(self.model.predict(images, batch_size=256, verbose=0))

    def _saved_model_route(self, recipe: Recipe, calibration: np.ndarray | None, latch: InterruptLatch) -> bytes:
        import tensorflow as tf

        if self._saved_model is None:
            self._saved_model = self.workdir / "saved_model"
            self.model.export(str(self._saved_model), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(self._saved_model))
        return recipe.configure(converter, calibration, latch).convert()

    def _keras_route(self, recipe: Recipe, calibration: np.ndarray | None, latch: InterruptLatch) -> bytes:
        target = self.workdir / f"keras_{len(list(self.workdir.glob('*.tflite')))}.tflite"
        self.model.export(str(target), format="litert", verbose=False, **recipe.attributes(calibration, latch))
        return target.read_bytes()

    def _routes(self, route: Route) -> list[tuple[Route, Callable[..., bytes]]]:
        both = [(Route.SAVED_MODEL, self._saved_model_route), (Route.KERAS_LITERT, self._keras_route)]
        return both if route is Route.AUTO else [r for r in both if r[0] is route]

    def convert(self, recipe: Recipe, route: Route = Route.AUTO, calibration: np.ndarray | None = None) -> Conversion:
        """Try the routes in order; the first that converts wins. Ctrl-C ends calibration quickly."""
        if recipe.quantizer:
            return self._quantized(recipe, Route(route), calibration)
        failures: list[str] = []
        for name, attempt in self._routes(Route(route)):
            with interrupts_after_native_call() as latch, native_stderr_captured() as native:
                try:
                    content = attempt(recipe, calibration, latch)
                    return Conversion(
                        content, recipe, str(name), failures, read_requirements(content, recipe.precision.value)
                    )
                except Exception as error:  # noqa: BLE001 - the converter raises anything
                    if latch.received:
                        break  # interrupted, not failed: the latch raises KeyboardInterrupt
                    failures.append(f"{name}: {_first_line(error, native)}")
        raise ConversionError(f"{recipe.precision}: TensorFlow could not convert the model ({'; '.join(failures)})")

    def float_model(self, route: Route = Route.AUTO) -> Conversion:
        """The float32 conversion, made once: what litert-quantizer starts from."""
        if route not in self._float:
            self._float[route] = self.convert(Recipe(Precision.FLOAT32), route)
        return self._float[route]

    def ranges(self, method: Calibration, calibration: np.ndarray, route: Route = Route.AUTO) -> quantizer.Ranges:
        key = (method, hashlib.sha1(np.ascontiguousarray(calibration).tobytes()).hexdigest())
        if key not in self._ranges:
            self._ranges[key] = quantizer.calibrate(self.float_model(route).content, calibration, method)
        return self._ranges[key]

    def layer_errors(self, quantized: bytes, calibration: np.ndarray) -> list[layer_error.LayerError]:
        """Each int8 activation of `quantized` against the float32 model, on the first calibration images."""
        source = self.float_model().content
        producers = {name: op for op in quantizer.float_ops(source) for name in op.outputs}
        return layer_error.layer_errors(source, quantized, calibration[:LAYER_ERROR_IMAGES], producers)

    def _quantized(self, recipe: Recipe, route: Route, calibration: np.ndarray | None) -> Conversion:
        """int8 or mixed by litert-quantizer, from this model's float32 conversion."""
        if calibration is None:
            raise ConversionError(f"{recipe.precision} needs calibration images")
        source = self.float_model(route)
        ranges = self.ranges(recipe.calibrated_by, calibration, route)
        with interrupts_after_native_call():
            content, details = quantizer.quantize(source.content, ranges), {}
            if recipe.precision is Precision.MIXED:
                content, details = self._mixed(recipe, source.content, ranges, content, calibration)
        requirements = read_requirements(content, recipe.precision.value)
        return Conversion(content, recipe, f"{source.route}+{QUANTIZER}", source.failures, requirements, details)

    def _mixed(
        self, recipe: Recipe, source: bytes, ranges: quantizer.Ranges, int8: bytes, calibration: np.ndarray
    ) -> tuple[bytes, dict[str, Any]]:
        if self.selection is None or not len(self.selection):
            raise ConversionError("mixed needs validation images to choose its float ops on")
        reference = self.reference_scores(self.selection).argmax(axis=1)
        worst = [e.index for e in layer_error.worst(self.layer_errors(int8, calibration)) if e.index >= 0]
        with self.reporter.task("mixed: scoring candidates", total=None) as task:
            choice = mixed.search(source, ranges, (self.selection, reference), recipe.target, worst, task.update)
        return choice.content, {**choice.record(recipe.target), "tried": choice.tried}

    def convert_for_runtime(
        self,
        recipe: Recipe,
        route: Route = Route.AUTO,
        calibration: np.ndarray | None = None,
        target_runtime: str | None = None,
    ) -> Conversion:
        """Convert; for a target runtime, add the recipe's compatibility steps until its ops are old enough."""
        steps = list(recipe.compatibility_steps)
        while True:
            done = self.convert(recipe, route, calibration)
            if target_runtime is None or done.requirements.runs_on(target_runtime) or not steps:
                return done
            recipe = recipe.with_flags(steps.pop(0))


def convert_model(
    model: Any,
    recipe: Recipe,
    route: Route = Route.AUTO,
    calibration: np.ndarray | None = None,
    target_runtime: str | None = None,
    selection: np.ndarray | None = None,
) -> Conversion:
    """One precision of a Keras model in memory, in a temporary working folder: the public entry point.

    `calibration` (training images) sets int8 ranges; `selection` (validation images) is what `mixed` is chosen on.
    """
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-convert-") as workdir:
        converter = Converter(model, Path(workdir), selection)
        return converter.convert_for_runtime(recipe, route, calibration, target_runtime)
