"""Each kind of source as the stage needs it: its input shapes, its outputs' widths, how its own framework scores
images, and the folder's reference model made from it (model.keras, or a float32 / quantized .tflite)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter

from ..errors import SourceError
from . import graphs, measure
from .graphs import Preprocessing
from .sources import Source, load_keras, tflite_bytes


@dataclass
class Loaded:
    """A source loaded: what the stage asks of every kind alike."""

    source: Source
    input_shapes: list[list[int | None]]
    output_widths: list[int | None]  # each output's last dimension, in the source's order
    handle: Any  # the Keras model, (loaded, function, keyword, output names) of a SavedModel, or .tflite bytes

    def scorer(self, pre: Preprocessing, output: int) -> measure.Scorer:
        """The source run by its own framework, fed what it expects."""
        kind = self.source.kind
        if kind in ("keras", "h5"):
            return measure.keras_scorer(self.handle, pre, output)
        if kind == "saved-model":
            _, function, keyword, names = self.handle
            return measure.saved_model_scorer(function, keyword, names[output], pre)
        interpreter, _ = load_interpreter(self.source.path, content=self.handle)
        return measure.tflite_scorer(interpreter, pre)

    def reference(self, shape: tuple[int, int, int], pre: Preprocessing, output: int, softmax: bool,
                  workdir: Path) -> Any:  # fmt: skip
        """The folder's model: a Keras model taking raw pixels, or .tflite bytes (a SavedModel's made so)."""
        kind = self.source.kind
        if kind in ("keras", "h5"):
            return graphs.keras_model(self.handle, shape, pre, output, softmax)
        if kind == "saved-model":
            return graphs.saved_model_tflite(self.source.path, shape, pre, self.handle[3][output], softmax, workdir)
        return self.handle


def load(source: Source, custom_objects: Path | None) -> Loaded:
    """Load a source by its kind (safely: see `pipeline.importing.sources`)."""
    if source.kind in ("keras", "h5"):
        model = load_keras(source, custom_objects)
        shapes = [list(tensor.shape) for tensor in model.inputs]
        outputs = model.outputs if isinstance(model.outputs, list) else [model.outputs]
        return Loaded(source, shapes, [_width(list(o.shape), source.path) for o in outputs], model)
    if source.kind == "saved-model":
        handle = graphs.serving(source.path)
        _, function, _, names = handle
        shapes = graphs.saved_model_input_shapes(function)
        widths = [_width(list(function.structured_outputs[n].shape), source.path) for n in names]
        return Loaded(source, shapes, widths, handle)
    content = tflite_bytes(source)
    interpreter, _ = load_interpreter(source.path, content=content)
    outputs = interpreter.get_output_details()
    if len(outputs) != 1:
        raise SourceError(
            f"{source.path}: a .tflite with {len(outputs)} outputs; import the Keras model or SavedModel it came "
            "from with --output-index N, or convert it with the class output alone"
        )
    shapes = [[_dim(v) for v in d.get("shape_signature", d["shape"])] for d in interpreter.get_input_details()]
    for detail in interpreter.get_input_details():
        if np.dtype(detail["dtype"]) not in (np.float32, np.int8, np.uint8):
            raise SourceError(f"{source.path}: its input is {np.dtype(detail['dtype'])}, not an image's float or int8")
    return Loaded(source, shapes, [_width([_dim(v) for v in outputs[0]["shape"]], source.path)], content)


def _dim(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


def _width(shape: list[Any], where: Path) -> int | None:
    """An output's class count: its last dimension when it is a vector per image, else None (not a class output)."""
    dims = [_dim(v) for v in shape]
    if len(dims) == 2 and dims[1] is not None:
        return dims[1]
    return None


def choose_output(widths: list[int | None], classes: int, index: int | None, where: Path) -> int:
    """The class output: --output-index N (the source's order), else the one output whose width is the class count."""
    if index is not None:
        if not 0 <= index < len(widths):
            raise SourceError(f"--output-index {index}: {where} has {len(widths)} output(s), numbered from 0")
        if widths[index] != classes:
            raise SourceError(
                f"{where}: output {index} gives {widths[index]} values per image, but there are {classes} labels; "
                "give the labels in output order with --labels FILE, or another --output-index"
            )
        return index
    fitting = [i for i, width in enumerate(widths) if width == classes]
    if len(fitting) == 1:
        return fitting[0]
    shown = ", ".join(f"{i}: {w}" for i, w in enumerate(widths))
    if not fitting:
        raise SourceError(
            f"{where}: no output gives one value per label ({classes} labels; outputs {shown}); give the labels in "
            "output order with --labels FILE, or choose the class output with --output-index N"
        )
    raise SourceError(f"{where}: outputs {fitting} each give {classes} values; choose one with --output-index N")
