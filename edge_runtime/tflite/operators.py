"""Operator options a kernel divides by or sizes its loops with, held to sane ranges before an interpreter runs.

A FlatBuffer can be sound and still crash a kernel: tflite-runtime 2.14 dies of SIGFPE on a CONV_2D whose
stride is 0 or 2**31-1 (found by benchmarks/model_fuzzing.py on a MobileNetV2). Such values are refused
here, per operator, as the interpreter will read them: the options table of the operator's own kind, a
field the table leaves out at its schema default, and every field 0 when the operator carries no options
of its kind (TFLite then leaves its parameters zeroed).
"""

from __future__ import annotations

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
