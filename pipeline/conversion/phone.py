"""The `mediapipe` target: variants that MediaPipe Tasks' ImageClassifier and the TFLite Task Library load as they are.

MediaPipe feeds RGB (3 channels; 1-channel inputs are refused), normalizes float inputs with the file's
NormalizationOptions, feeds uint8 inputs raw, and reads labels from the file's metadata. So the phone
model is the Keras model behind a new RGB input of raw pixels: for a grayscale model the RGB-to-gray step
(Pillow's ITU-R 601-2 luma, what edge_runtime does on the device) and any inversion move into the graph.
Its int8 variant takes and returns uint8 (the TF converter's `inference_input_type`, as MediaPipe Model
Maker's `QuantizationConfig.for_int8`), calibrated on the same training images as the plain int8, given as RGB,
with its input declared raw pixels (`raw_uint8_input`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from ..errors import ConversionError

# Pillow's convert("L"): L = R * 299/1000 + G * 587/1000 + B * 114/1000 (ITU-R 601-2 luma).
LUMA = (0.299, 0.587, 0.114)


def phone_spec(spec: InputSpec) -> InputSpec:
    """What a phone feeds the mediapipe variants: raw RGB pixels at the model's size."""
    return InputSpec(spec.height, spec.width, 3, color="rgb", invert=False, dtype="uint8", resize=spec.resize)


def phone_model(model: Any, spec: InputSpec) -> Any:
    """`model` behind an RGB input of raw pixels; gray conversion and inversion run inside the graph."""
    import keras

    inputs = keras.Input((spec.height, spec.width, 3), name="image", dtype="float32")
    pixels = inputs
    if spec.channels == 1:
        gray = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_gray")
        pixels = gray(pixels)
        gray.set_weights([np.array(LUMA, np.float32).reshape(1, 1, 3, 1)])
    if spec.invert:
        pixels = keras.layers.Rescaling(-1.0, offset=255.0, name="invert")(pixels)
    return keras.Model(inputs, model(pixels), name="image_classifier")


def phone_pixels(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model pixels of the folder's input (N, H, W, C) as the RGB raw pixels the phone model takes.

    The exact inverse of what the phone graph does: inverted images are inverted back and gray is
    repeated into R, G and B (the luma of equal channels is the gray value itself).
    """
    pixels = np.asarray(pixels, np.float32)
    if spec.invert:
        pixels = 255.0 - pixels
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels


def raw_uint8_input(content: bytes, where: str) -> bytes:
    """A uint8 input that reads pixels as they are (scale 1, zero point 0): MediaPipe feeds uint8 pixels unchanged.

    The TF converter scales a uint8 input to the range the calibration images span, so images that never
    reach 0 or 255 give another scale. The input only feeds the QUANTIZE op that requantizes it into the
    int8 graph, whose own range stays as calibrated, so declaring the input raw keeps every value right.
    """
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    quantization = tensor.quantization
    if fb.type_to_name(tensor.type) != "UINT8" or quantization is None or quantization.scale is None:
        return content
    if abs(float(quantization.scale[0]) - 1.0) < 1e-9 and int(quantization.zeroPoint[0]) == 0:
        return content  # calibration spanned 0..255 (Fashion-MNIST does)
    readers = [op for op in graph.operators if graph.inputs[0] in list(op.inputs)]
    kinds = {fb.opcode_to_name(model, op.opcodeIndex) for op in readers}
    if kinds != {"QUANTIZE"}:
        raise ConversionError(f"{where}: its uint8 input feeds {', '.join(sorted(kinds))}, not a QUANTIZE op")
    quantization.scale, quantization.zeroPoint = [1.0], [0]
    return bytes(fb.convert_object_to_bytearray(model))
