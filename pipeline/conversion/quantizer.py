"""Post-training quantization with litert-quantizer: ranges calibrated our way, any op kept in float.

litert-quantizer (the maintained continuation of ai-edge-quantizer, AEQ below) quantizes a float `.tflite`
(no TensorFlow); we use it where the TF converter cannot do what we need:
- **calibration we choose**: AEQ's default (`moving-average`) smooths each image's min/max into the
  running range (factor 0.95), so ranges end up about half as wide as the data; `min-max` keeps the
  widest range seen. Measured int8 agreement with Keras on the test split, 300 calibration images:
  default cnn: TF converter 99.74%, AEQ moving-average 99.72%, AEQ min-max 99.74% (same size);
  MobileNetV2 (alpha 0.35, 32 px, from scratch): see benchmarks/results (#16's table).
- **ops kept in float**: a recipe entry with `algorithm_key="no_quantize"` for an op's scope (its
  output tensor names joined by ";" plus a trailing ";"), which the `mixed` precision searches over.
AEQ keeps tensor names, so a quantized tensor can be compared with its float twin by name
(`pipeline.conversion.layer_error`). It writes every operator at version 1 (the TF converter writes the
version
its kernel needs), so a file's recorded minimum runtime is a lower bound; litert 2.3 and
tflite-runtime 2.14 run them (tests).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.backends import native_stderr_captured
from edge_runtime.choices import Calibration
from edge_runtime.tflite.requirements import op_name

from ..errors import ConversionError

Ranges = dict[str, Any]  # tensor name -> AEQ's "quantization statistical values" ({"min": ..., "max": ...})


@dataclass(frozen=True)
class Op:
    """One operator of a float model, in execution order, as a recipe can name it."""

    index: int
    kind: str  # builtin operator name, e.g. CONV_2D
    scope: str  # AEQ's scope: output tensor names joined by ";" with a trailing ";"
    outputs: tuple[str, ...]
    weight_bytes: int  # float32 bytes of its constant inputs (what keeping it in float costs)

    @property
    def regex(self) -> str:
        return "^" + re.escape(self.scope) + "$"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """AEQ prints progress bars and sizes and the interpreter warns about preserved tensors: not ours to show."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)


def float_ops(float_model: bytes) -> list[Op]:
    """The first subgraph's operators, in order, with their scopes and float weight bytes."""
    from litert_quantizer.utils import tfl_flatbuffer_utils as tfl

    model = tfl.read_model(bytearray(float_model))
    graph = model.subgraphs[0]
    ops = []
    for index, op in enumerate(graph.operators):
        outputs = tuple(tfl.get_tensor_name(graph.tensors[i]) for i in op.outputs if i != -1)
        weights = 0
        for i in op.inputs:
            buffer = model.buffers[graph.tensors[i].buffer] if i != -1 else None
            if buffer is not None and buffer.data is not None:
                weights += len(buffer.data)
        kind = op_name(model.operatorCodes[op.opcodeIndex].builtinCode)
        ops.append(Op(index, kind, tfl.get_op_scope(op, graph.tensors), outputs, weights))
    return ops


def input_tensor(detail: dict[str, Any], images: np.ndarray) -> np.ndarray:
    """Model input (float, preprocessed) in the input tensor's dtype, quantized by its scale and zero point."""
    values = images.astype(np.float32)
    scale, zero_point = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale:
        info = np.iinfo(detail["dtype"])
        values = np.clip(np.round(values / scale + zero_point), info.min, info.max)
    return values.astype(detail["dtype"])


def _signature(float_model: bytes) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_captured():
        signatures = Interpreter(model_content=float_model).get_signature_list()
    if len(signatures) != 1:
        raise ConversionError(f"litert-quantizer needs one model signature, the float model has {len(signatures)}")
    key, signature = next(iter(signatures.items()))
    if len(signature["inputs"]) != 1:
        raise ConversionError("litert-quantizer: the float model must have exactly one input")
    return key, signature["inputs"][0]


def _int8_recipe(keep_float: Iterable[Op] = ()) -> list[dict[str, Any]]:
    from litert_quantizer import recipe

    entries = list(recipe.static_wi8_ai8())
    entries += [{"regex": op.regex, "operation": "*", "algorithm_key": "no_quantize"} for op in keep_float]
    return entries


def calibrate(float_model: bytes, images: np.ndarray, method: Calibration) -> Ranges:
    """Activation ranges of every tensor over `images` (already preprocessed), by `method`."""
    if method is Calibration.TF:
        raise ConversionError("the TF converter calibrates inside its own conversion, not through this module")
    from litert_quantizer import calibrator, recipe_manager
    from litert_quantizer.utils import qsv_utils

    key, name = _signature(float_model)
    samples = {key: [{name: image[None].astype(np.float32)} for image in images]}
    update = {
        Calibration.MIN_MAX: qsv_utils.min_max_update,
        Calibration.MOVING_AVERAGE: qsv_utils.moving_average_update,
    }
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(_int8_recipe())
    with _quiet(), native_stderr_captured():
        runner = calibrator.Calibrator(
            bytearray(float_model), num_threads=os.cpu_count() or 1, qsv_update_func=update[method]
        )
        runner.calibrate(samples, manager)
        return runner.get_model_qsvs()


def quantize(float_model: bytes, ranges: Ranges, keep_float: Iterable[Op] = ()) -> bytes:
    """int8 weights, activations, input and output; the `keep_float` ops compute in float."""
    from litert_quantizer import quantizer

    with _quiet():
        result = quantizer.Quantizer(bytearray(float_model), _int8_recipe(keep_float)).quantize(ranges)
    if result.quantized_model is None:
        raise ConversionError("litert-quantizer returned no model")
    return _shape_reads_int8(bytes(result.quantized_model))


def dynamic(float_model: bytes) -> bytes:
    """Dynamic-range int8: int8 weights (per channel), float activations quantized on the fly by the kernels."""
    from litert_quantizer import quantizer, recipe

    with _quiet():
        result = quantizer.Quantizer(bytearray(float_model), recipe.dynamic_wi8_afp32()).quantize()
    return bytes(result.quantized_model)


FLOAT16_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")  # the ops litert-quantizer casts weights of


def float16(float_model: bytes) -> bytes:
    """float16 weights of the weighted ops, dequantized once on load (as the TF converter's float16 variant)."""
    from litert_quantizer import qtyping, quantizer

    runner = quantizer.Quantizer(bytearray(float_model))
    config = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    for op in FLOAT16_OPS:
        runner.update_quantization_recipe(
            regex=".*", algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
            operation_name=qtyping.TFLOperationName(op), op_config=config,
        )  # fmt: skip
    with _quiet():
        return bytes(runner.quantize().quantized_model)


def _shape_reads_int8(content: bytes) -> bytes:
    """Drop DEQUANTIZE ops whose only readers are SHAPE ops, which then read the int8 tensor.

    AEQ does not quantize SHAPE, so it dequantizes its input: Keras' Flatten gives the cnn a
    float tensor in the middle of an int8 graph (an integer-only accelerator would split there).
    SHAPE reads only the dimensions, which dequantizing does not change.
    """
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(content))  # also inlines buffers stored after the flatbuffer
    graph = model.subgraphs[0]
    kind = [op_name(fb.get_builtin_code_from_operator_code(code)) for code in model.operatorCodes]
    readers: dict[int, list[Any]] = {}
    for op in graph.operators:
        for tensor in op.inputs:
            readers.setdefault(int(tensor), []).append(op)
    dropped = []
    for op in graph.operators:
        if kind[op.opcodeIndex] != "DEQUANTIZE" or int(op.outputs[0]) in list(graph.outputs):
            continue
        users = readers.get(int(op.outputs[0]), [])
        if users and all(kind[user.opcodeIndex] == "SHAPE" for user in users):
            for user in users:
                user.inputs = [op.inputs[0] if int(t) == int(op.outputs[0]) else t for t in user.inputs]
            dropped.append(op)
    if not dropped:
        return content
    graph.operators = [op for op in graph.operators if all(op is not gone for gone in dropped)]
    _drop_tensors(model, {int(op.outputs[0]) for op in dropped})
    used = sorted({op.opcodeIndex for subgraph in model.subgraphs for op in subgraph.operators})
    codes = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[old] for old in used]
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            op.opcodeIndex = codes[op.opcodeIndex]
    return bytes(fb.convert_object_to_bytearray(model))


def _drop_tensors(model: Any, unused: set[int]) -> None:
    """Remove tensors no op reads or writes any more, renumbering every reference to the rest."""
    graph = model.subgraphs[0]
    renumber, kept = {}, []
    for index, tensor in enumerate(graph.tensors):
        if index not in unused:
            renumber[index] = len(kept)
            kept.append(tensor)
    graph.tensors = kept

    def moved(indices: Any) -> list[int]:
        return [renumber[int(i)] if int(i) >= 0 else -1 for i in indices]

    for op in graph.operators:
        op.inputs, op.outputs = moved(op.inputs), moved(op.outputs)
    graph.inputs, graph.outputs = moved(graph.inputs), moved(graph.outputs)
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.tensorIndex = renumber[int(entry.tensorIndex)]
