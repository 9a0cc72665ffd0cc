"""Operator options a kernel divides by or sizes its loops with, held to sane ranges before an interpreter runs.

A FlatBuffer can be sound and still crash a kernel: tflite-runtime 2.14 dies of SIGFPE on a CONV_2D whose
stride is 0 or 2**31-1 (found by benchmarks/model_fuzzing.py on a MobileNetV2). Such values are refused
here, per operator, as the interpreter will read them: the options table of the operator's own kind, a
field the table leaves out at its schema default, and every field 0 when the operator carries no options
of its kind (TFLite then leaves its parameters zeroed).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .builtin_ops import BUILTIN_OPERATORS
from .schema_tables import ENUMS, FIELDS, UNIONS
from .verifier import Damaged

if TYPE_CHECKING:
    from .structure import Table

BYTES = ("padding", "fused_activation_function")  # enums of one byte; the rest are int32
LIMIT = 1 << 14  # strides, dilations, filter and block sizes: (filter - 1) * dilation stays far below 2**31
PADDING, ACTIVATION = ENUMS["Padding"], ENUMS["ActivationFunctionType"]
_STRIDES = (("stride_w", 0, 1, LIMIT), ("stride_h", 0, 1, LIMIT))
_DILATIONS = (("dilation_w_factor", 1, 1, LIMIT), ("dilation_h_factor", 1, 1, LIMIT))
_PADDING = (("padding", 0, 0, PADDING), ("fused_activation_function", 0, 0, ACTIVATION))
_POOL = ("Pool2DOptions", (*_PADDING, *_STRIDES, ("filter_width", 0, 1, LIMIT), ("filter_height", 0, 1, LIMIT)))
# operator -> (the options table it reads, ((field, schema default, lowest, highest), ...))
RULES: dict[str, tuple[str, tuple[tuple[str, int, int, int], ...]]] = {
    "CONV_2D": ("Conv2DOptions", (*_PADDING, *_STRIDES, *_DILATIONS)),
    "DEPTHWISE_CONV_2D": (
        "DepthwiseConv2DOptions",
        (*_PADDING, *_STRIDES, *_DILATIONS, ("depth_multiplier", 0, 0, LIMIT)),
    ),
    "AVERAGE_POOL_2D": _POOL,
    "MAX_POOL_2D": _POOL,
    "L2_POOL_2D": _POOL,
    "TRANSPOSE_CONV": ("TransposeConvOptions", (("padding", 0, 0, PADDING), *_STRIDES)),
    "CONV_3D": (
        "Conv3DOptions",
        (*_PADDING, ("stride_d", 0, 1, LIMIT), *_STRIDES, ("dilation_d_factor", 1, 1, LIMIT), *_DILATIONS),
    ),
    "SPACE_TO_DEPTH": ("SpaceToDepthOptions", (("block_size", 0, 1, LIMIT),)),
    "DEPTH_TO_SPACE": ("DepthToSpaceOptions", (("block_size", 0, 1, LIMIT),)),
}
RULES["CONV_3D_TRANSPOSE"] = RULES["CONV_3D"]
# builtin code -> (union type, (slot, field, default, lowest, highest)...)
_CHECKS = {
    BUILTIN_OPERATORS.index(op): (
        UNIONS["BuiltinOptions"].index(table) + 1,
        tuple((FIELDS[table].split().index(name), name, *bounds) for name, *bounds in fields),
    )
    for op, (table, fields) in RULES.items()
}


def check_options(op: Table, builtin: int, what: str) -> None:
    """Raise Damaged when operator `op` (of builtin code `builtin`) has options outside a kernel's range."""
    rule = _CHECKS.get(builtin)
    if rule is None:
        return
    kind, fields = rule
    options = op.table(4, f"{what}'s options") if op.scalar(3, "B", 0) == kind else None
    name = BUILTIN_OPERATORS[builtin]
    for slot, field, default, lowest, highest in fields:
        value = 0 if options is None else options.scalar(slot, "b" if field in BYTES else "i", default)
        if not lowest <= value <= highest:
            missing = " (it has no options of its kind, so every field is 0)" if options is None else ""
            raise Damaged(f"{what} ({name}) has {field} {value}{missing}; a kernel needs {lowest}..{highest}")


# XNNPACK refuses a quantized convolution whose requantization scale (input scale x filter scale / output scale)
# is 256 or more, and ai-edge-litert 2.3 then corrupts its heap: measured on a MobileNetV2 int8, one per-channel
# filter scale of 100 ran, one of 10,000 aborted ("double free or corruption"; fuzzing found five such files).
MAX_REQUANTIZATION = 256.0
# operator -> positions of (input, filter) among its inputs; its output is output 0
REQUANTIZED = {"CONV_2D": (0, 1), "DEPTHWISE_CONV_2D": (0, 1), "FULLY_CONNECTED": (0, 1), "TRANSPOSE_CONV": (2, 1)}


def _scales(tensor: Table) -> list[float]:
    quantization = tensor.table(4, "quantization")
    return [] if quantization is None else quantization.ints(2, "f", "scales")


def check_requantization(op: Table, builtin: int, tensors: list[Table], constants: set[int], what: str) -> None:
    """Raise Damaged when a quantized operator's scales are ones XNNPACK refuses (indices already checked).

    `constants`: the positions of the subgraph's constant tensors (weights), which the ratio rule leaves out.
    """
    name = BUILTIN_OPERATORS[builtin] if builtin < len(BUILTIN_OPERATORS) else ""
    if name not in REQUANTIZED:
        _check_ratios(op, name, tensors, constants, what)
        return
    inputs, outputs = op.ints(1, "i", "inputs"), op.ints(2, "i", "outputs")
    positions = REQUANTIZED[name]
    if len(inputs) <= max(positions) or not outputs or min(inputs[p] for p in positions) < 0:
        return
    data, weights, result = (_scales(tensors[i]) for i in (inputs[positions[0]], inputs[positions[1]], outputs[0]))
    if not (data and weights and result):
        return  # float, or weights alone quantized (dynamic range): nothing is requantized
    for scale in weights:
        multiplier = data[0] * scale / result[0] if result[0] else math.inf
        if not multiplier < MAX_REQUANTIZATION:
            raise Damaged(
                f"{what} ({name}) has a requantization scale of {multiplier:.3g} (input scale x filter scale / "
                f"output scale); an interpreter needs less than {MAX_REQUANTIZATION:g}"
            )


# Every other quantized operator: each varying input's scale over the output's within XNNPACK's range for ADD,
# [2**-10, 2**8); measured on a MobileNetV2 int8, ai-edge-litert 2.3 aborts ("double free or corruption") on an
# ADD input scale of 1e6, a MEAN's or a SOFTMAX's of 1e-8. MUL multiplies its inputs' scales: [2**-16, 2**8).
RATIO = (2.0**-10, 2.0**8)
PRODUCT = {"MUL": (2.0**-16, 2.0**8)}


def _check_ratios(op: Table, name: str, tensors: list[Table], constants: set[int], what: str) -> None:
    outputs = op.ints(2, "i", "outputs")
    if not outputs or outputs[0] < 0:
        return
    result = _scales(tensors[outputs[0]])
    if len(result) != 1 or not result[0]:
        return  # not quantized per tensor (float, int32, per-channel weights)
    scales = []
    for index in op.ints(1, "i", "inputs"):
        if index >= 0 and tensors[index].position not in constants:
            found = _scales(tensors[index])
            if len(found) == 1:
                scales.append(found[0])
    if name in PRODUCT:
        scales, (low, high) = ([math.prod(scales)] if len(scales) == 2 else []), PRODUCT[name]
    else:
        low, high = RATIO
    for scale in scales:
        if not low <= scale / result[0] < high:
            raise Damaged(
                f"{what} ({name or 'operator'}) scales an input by {scale / result[0]:.3g} (input scale / output "
                f"scale); an interpreter needs {low:.3g} to {high:g}"
            )


# What the fuzzing found kernels trust about an operator's inputs: a CONV_2D or DEPTHWISE_CONV_2D with its bias
# left out (2 inputs) crashed both interpreters (SIGSEGV, Coral's MobileNetV1), and so did an input of -1
# (optional) where the kernel needs a tensor (the cnn's FULLY_CONNECTED weights). -1 stays allowed from the third
# input on (a FULLY_CONNECTED's bias) and anywhere in the recurrent operators, whose inputs are mostly optional.
INPUT_COUNTS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3}
OPTIONAL_ANYWHERE = {"LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "CUSTOM"}


def check_inputs(op: Table, builtin: int, what: str) -> None:
    """Raise Damaged when an operator lacks an input its kernel reads without looking."""
    name = BUILTIN_OPERATORS[builtin] if builtin < len(BUILTIN_OPERATORS) else ""
    inputs = op.ints(1, "i", "inputs")
    needed = INPUT_COUNTS.get(name)
    if needed is not None and len(inputs) != needed:
        raise Damaged(f"{what} ({name}) has {len(inputs)} inputs; its kernel needs {needed}")
    if name not in OPTIONAL_ANYWHERE and -1 in inputs[:2]:
        raise Damaged(f"{what} ({name or 'operator'}) leaves out input {inputs.index(-1)}, which its kernel needs")
