"""Variants made from a .tflite file instead of a Keras model: an imported folder's reference (a float32 .tflite, from
the user or made from their SavedModel), quantized by litert-quantizer alone, which needs no TensorFlow graph.

float32 is the file itself; dynamic, int8 and mixed are litert-quantizer's, calibrated on the folder's training
images as the file takes them (normalised by the folder's mean/std); float16 casts the weighted ops' weights to
float16. What cannot be made from a file is skipped with a line: int8 with uint8 or float32 I/O (the TF converter's),
the mediapipe target (its graph edits), and everything but int8 from an already quantized source.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.choices import Calibration, IoType, Precision, Route
from edge_runtime.tflite.requirements import read_requirements

from ..progress import Reporter
from . import quantizer
from .converter import QUANTIZER, Conversion, Converter, Recipe
from .mixed import NoCandidate, top1

ROUTE = "imported"


class CannotMake(NoCandidate):
    """A precision that cannot be made from the folder's file: that variant is skipped with a line, not the rest."""


class FileConverter(Converter):
    """A Converter whose model is a .tflite file: the float32 one, or (`quantized`) an int8 one kept as it is."""

    def __init__(
        self, content: bytes, quantized: bool, workdir: Path, selection: np.ndarray | None, reporter: Reporter
    ) -> None:
        super().__init__(None, workdir, selection, reporter)
        self.content = content
        self.quantized = quantized

    def reference_scores(self, images: np.ndarray) -> np.ndarray:
        """The file's class scores (one-hot of its top-1: drift's reference classes) for model input."""
        found = top1(self.content, images)
        return np.eye(int(found.max(initial=0)) + 1, dtype=np.float32)[found] if len(found) else np.zeros((0, 1))

    def _as_is(self, recipe: Recipe) -> Conversion:
        return Conversion(self.content, recipe, ROUTE, [], read_requirements(self.content, recipe.precision.value))

    def float_model(self, route: Route = Route.AUTO) -> Conversion:
        if self.quantized:
            raise CannotMake("the source is already quantized, so there is no float32 model to quantize")
        return self._as_is(Recipe(Precision.FLOAT32))

    def convert(self, recipe: Recipe, route: Route = Route.AUTO, calibration: np.ndarray | None = None) -> Conversion:
        precision = recipe.precision
        if self.quantized:
            if precision is Precision.INT8:
                return self._as_is(recipe)
            raise CannotMake(
                "it cannot be made from an already quantized source (int8); import the float32 .tflite or the model "
                "it came from to make it"
            )
        if precision is Precision.FLOAT32:
            return self._as_is(recipe)
        if precision in (Precision.DYNAMIC, Precision.FLOAT16):
            make = quantizer.dynamic if precision is Precision.DYNAMIC else quantizer.float16
            try:
                content = make(self.content)
            except Exception as error:  # noqa: BLE001 - litert-quantizer raises anything for a graph it cannot take
                raise CannotMake(f"litert-quantizer cannot make it from this file ({str(error)[:120]})") from None
            return Conversion(content, recipe, f"{ROUTE}+{QUANTIZER}", [], read_requirements(content, str(precision)))
        if recipe.io_type is not IoType.INT8:
            raise CannotMake(f"{recipe.io_type} I/O needs the TF converter; a .tflite source gets int8 I/O")
        if recipe.calibration is Calibration.TF:
            recipe = replace(recipe, calibration=Calibration.MIN_MAX)  # the TF converter's needs a TF graph
        return self._quantized(replace(recipe, flags=()), route, calibration)

    def convert_for_runtime(self, recipe: Recipe, route: Route = Route.AUTO, calibration: np.ndarray | None = None,
                            target_runtime: str | None = None) -> Conversion:  # fmt: skip
        """litert-quantizer writes every op at version 1: nothing to lower for an older runtime."""
        return self.convert(recipe, route, calibration)


def quantized_source(metadata: Any) -> bool:
    """True when the folder's reference is an already quantized .tflite (imported as model_int8.tflite)."""
    return metadata.source is not None and metadata.source.kind == "tflite-quantized"
