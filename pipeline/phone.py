"""The `mediapipe` target: variants that MediaPipe Tasks' ImageClassifier and the TFLite Task Library load as they are.

MediaPipe feeds RGB (3 channels; 1-channel inputs are refused), normalizes float inputs with the file's
NormalizationOptions, feeds uint8 inputs raw, and reads labels from the file's metadata. So the phone
model is the Keras model behind a new RGB input of raw pixels: for a grayscale model the RGB-to-gray step
(Pillow's ITU-R 601-2 luma, what edge_runtime does on the device) and any inversion move into the graph.
Its int8 variant takes and returns uint8 (the TF converter's `inference_input_type`, as MediaPipe Model
Maker's `QuantizationConfig.for_int8`), calibrated on the same training images as the plain int8, given as RGB.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_runtime.model_folder import InputSpec

from .errors import ConversionError

# Pillow's convert("L"): L = R * 299/1000 + G * 587/1000 + B * 114/1000 (ITU-R 601-2 luma).
LUMA = (0.299, 0.587, 0.114)


def phone_spec(spec: InputSpec) -> InputSpec:
    """What a phone feeds the mediapipe variants: raw RGB pixels at the model's size."""
    return InputSpec(spec.height, spec.width, 3, color="rgb", invert=False, dtype="uint8", mean=0.0, std=1.0)


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


def check_raw_uint8(content: bytes, where: str) -> None:
    """MediaPipe feeds uint8 pixels unchanged: a uint8 input must read them as they are (scale 1, zero point 0)."""
    from edge_runtime.backends import get_backend

    details = get_backend().interpreter_class(model_content=content).get_input_details()[0]
    scale, zero_point = details["quantization"]
    if np.dtype(details["dtype"]) == np.uint8 and (abs(scale - 1.0) > 1e-6 or zero_point != 0):
        raise ConversionError(
            f"{where}: the uint8 input was calibrated to scale {scale:g}, zero point {zero_point}, not raw pixels "
            "(scale 1, zero point 0): the calibration images do not span 0..255"
        )
