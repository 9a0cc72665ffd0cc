"""The conversion core, with no model folder: a Recipe per precision and a Converter from Keras to TFLite bytes.

Route: the Keras model is exported once as a SavedModel and each precision is converted from it
with `TFLiteConverter.from_saved_model`, builtin ops only so every LiteRT / tflite-runtime build
can run the result. `TFLiteConverter.from_keras_model` is broken for Keras 3 in several TensorFlow
releases, so it is not used. If the SavedModel route fails, Keras' own
`model.export(path, format="litert")` (Keras >= 3.13) is tried with the same settings.

A recipe states its converter settings once, in the form Keras' litert exporter takes as keyword
arguments (attributes, with `target_spec` as a nested dict); `Recipe.configure` applies them to a
`TFLiteConverter` the same way, so both routes convert with the same settings.
`pipeline.convert` stages the results in a model folder; the benchmark suite calls this directly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import native_stderr_captured
from edge_runtime.choices import IoType, Precision, Route
from edge_runtime.tflite_file import ModelRequirements, read_requirements

from .errors import ConversionError
from .signals import InterruptLatch, interrupts_after_native_call

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


@dataclass(frozen=True)
class Recipe:
    """How to make one precision (as MediaPipe Model Maker's `QuantizationConfig.for_int8()`)."""

    precision: Precision
    io_type: IoType = IoType.INT8  # the int8 variant's input/output type
    flags: tuple[tuple[str, Any], ...] = ()  # converter attributes beyond the precision's own

    @classmethod
    def for_precision(cls, precision: Precision | str, io_type: IoType | str = IoType.INT8) -> Recipe:
        return cls(Precision(precision), IoType(io_type))

    @property
    def needs_calibration(self) -> bool:
        return self.precision is Precision.INT8

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
    route: Route
    failures: list[str] = field(default_factory=list)  # routes that failed before `route` worked
    requirements: ModelRequirements = field(default_factory=lambda: ModelRequirements(None))


def _first_line(error: BaseException, native: list[str]) -> str:
    for text in [str(error), *reversed(native)]:
        for line in text.splitlines():
            if "error" in line.lower() and line.strip():
                return line.strip()[:200]
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


class Converter:
    """Turns one Keras model into TFLite bytes per recipe; the SavedModel is exported once into `workdir`."""

    def __init__(self, model: Any, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self._saved_model: Path | None = None

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
        failures: list[str] = []
        for name, attempt in self._routes(Route(route)):
            with interrupts_after_native_call() as latch, native_stderr_captured() as native:
                try:
                    content = attempt(recipe, calibration, latch)
                    return Conversion(
                        content, recipe, name, failures, read_requirements(content, recipe.precision.value)
                    )
                except Exception as error:  # noqa: BLE001 - the converter raises anything
                    if latch.received:
                        break  # interrupted, not failed: the latch raises KeyboardInterrupt
                    failures.append(f"{name}: {_first_line(error, native)}")
        raise ConversionError(f"{recipe.precision}: TensorFlow could not convert the model ({'; '.join(failures)})")

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
) -> Conversion:
    """One precision of a Keras model in memory, in a temporary working folder: the public entry point."""
    with tempfile.TemporaryDirectory(prefix="edge-pipeline-convert-") as workdir:
        return Converter(model, Path(workdir)).convert_for_runtime(recipe, route, calibration, target_runtime)
