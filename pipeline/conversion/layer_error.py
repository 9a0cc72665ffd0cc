"""Per-layer quantization error: each int8 activation against its float twin, on calibration images.

Both files run in LiteRT with every intermediate tensor kept; a quantized tensor is matched to the
float tensor of the same name (the TF converter and litert-quantizer both keep names) and shape.
Two numbers per tensor, over all images:
- `rmse_scale`: the RMSE of the dequantized values against float, in units of the tensor's
  quantization step. Rounding alone gives 1/sqrt(12) = 0.29; much more means clipped ranges
  or error carried in from earlier layers.
- `snr_db`: 10 log10(signal power / error power). 8 bits of a well-used range give about 40 dB;
  under 20 dB the layer's output is mostly noise.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_runtime.backends import native_stderr_captured

from .quantizer import input_tensor

ROUNDING_FLOOR = 1 / np.sqrt(12)  # rmse_scale of pure rounding to a uniform grid


@dataclass(frozen=True)
class LayerError:
    """How far one quantized activation is from float."""

    index: int  # the producing op's position in the float model, -1 for a graph input
    op: str
    tensor: str
    scale: float
    rmse: float
    rmse_scale: float
    snr_db: float

    def to_dict(self) -> dict[str, Any]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerError:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


def _interpreter(content: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings(), native_stderr_captured():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": that is what this is
        interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
    return interpreter


def _feed(interpreter: Any, image: np.ndarray) -> None:
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], input_tensor(detail, image[None]))
    interpreter.invoke()


def _pairs(float_run: Any, quant_run: Any) -> list[tuple[str, int, int, float, int]]:
    """(name, float index, quantized index, scale, zero point) of int8 activations with a float twin."""
    floats = {d["name"]: d for d in float_run.get_tensor_details() if d["dtype"] == np.float32}
    pairs = []
    for detail in quant_run.get_tensor_details():
        scales = detail["quantization_parameters"]["scales"]
        twin = floats.get(detail["name"])
        if detail["dtype"] != np.int8 or len(scales) != 1 or twin is None:
            continue
        if tuple(twin["shape"]) != tuple(detail["shape"]):
            continue
        zero_point = int(detail["quantization_parameters"]["zero_points"][0])
        pairs.append((detail["name"], twin["index"], detail["index"], float(scales[0]), zero_point))
    return pairs


def layer_errors(
    float_model: bytes, quantized_model: bytes, images: np.ndarray, producers: dict[str, Any]
) -> list[LayerError]:
    """Error of every int8 activation over `images` (model input, preprocessed), in graph order.

    `producers` maps a tensor name to the float model's op that writes it (`pipeline.conversion.quantizer.float_ops`).
    """
    float_run, quant_run = _interpreter(float_model), _interpreter(quantized_model)
    pairs = _pairs(float_run, quant_run)
    signal, noise, count = np.zeros(len(pairs)), np.zeros(len(pairs)), np.zeros(len(pairs))
    for image in images:
        _feed(float_run, image)
        _feed(quant_run, image)
        for at, (_, f_index, q_index, scale, zero_point) in enumerate(pairs):
            reference = float_run.get_tensor(f_index).astype(np.float64)
            with contextlib.suppress(ValueError):  # a tensor freed by the planner despite preserve-all
                value = (quant_run.get_tensor(q_index).astype(np.float64) - zero_point) * scale
                signal[at] += float((reference**2).sum())
                noise[at] += float(((value - reference) ** 2).sum())
                count[at] += reference.size
    errors = []
    for at, (name, _, _, scale, _) in enumerate(pairs):
        if not count[at]:
            continue
        rmse = float(np.sqrt(noise[at] / count[at]))
        snr = float(10 * np.log10(signal[at] / noise[at])) if noise[at] > 0 else float("inf")
        op = producers.get(name)
        errors.append(
            LayerError(
                op.index if op else -1, op.kind if op else "INPUT", name, scale, rmse, rmse / scale, min(snr, 999.0)
            )
        )
    return sorted(errors, key=lambda error: error.index)


def worst(errors: list[LayerError], count: int = 8) -> list[LayerError]:
    """The layers furthest from float, lowest signal-to-noise first."""
    return sorted(errors, key=lambda error: error.snr_db)[:count]
