"""The choices both packages name: str Enums, so a value is its own spelling on the command line and in JSON.

No TensorFlow here: the device imports this too. A new precision, target or interpreter is a new
member here plus its recipe, not a new branch in several modules.
"""

from __future__ import annotations

from enum import StrEnum


class Choice(StrEnum):
    """A str Enum (as ai-edge-quantizer's qtyping): a member equals, prints and serialises as its value."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class Precision(Choice):
    """A TFLite variant of a model: what its weights and activations are stored and computed in."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"  # float16 weights, dequantized on load (GPU delegates compute in float16)
    DYNAMIC = "dynamic"  # int8 weights, float activations
    INT8 = "int8"  # integer kernels and activations, calibrated on training images
    MIXED = "mixed"  # int8 with the ops that cost agreement kept in float, chosen on validation images


class Target(Choice):
    """Where a variant is meant to run; each target is a variant family in the model folder."""

    TFLITE = "tflite"  # any TFLite interpreter (edge_runtime, LiteRT, tflite-runtime): the model's own input
    MEDIAPIPE = "mediapipe"  # MediaPipe Tasks / TFLite Task Library: RGB input, float32 or uint8 I/O, metadata


class IoType(Choice):
    """Input and output tensor type of the int8 variant."""

    INT8 = "int8"
    UINT8 = "uint8"  # Edge TPU-era tools, MediaPipe and the Task Library
    FLOAT32 = "float32"


class Calibration(Choice):
    """How int8 activation ranges are estimated from calibration images."""

    MIN_MAX = "min-max"  # ai-edge-quantizer, the widest range seen over all images
    MOVING_AVERAGE = "moving-average"  # ai-edge-quantizer's default: each image's range, smoothed (factor 0.95)
    TF = "tf"  # the TF converter's representative dataset (its own histogram-free min/max)


class Resize(Choice):
    """How an image of another aspect ratio becomes the model's input size."""

    STRETCH = "stretch"  # scaled to the input size whatever its aspect ratio (what MediaPipe does by default)
    CROP = "crop"  # the largest centred region of the input's aspect ratio, then scaled (nothing distorted, edges lost)
    PAD = "pad"  # scaled to fit inside, the rest filled by repeating the edge pixels (nothing lost or distorted)


class Route(Choice):
    """How a Keras model becomes TFLite bytes."""

    AUTO = "auto"  # the SavedModel route, falling back to Keras' own export
    SAVED_MODEL = "saved-model"
    KERAS_LITERT = "keras-litert"


class BackendName(Choice):
    """Which TFLite interpreter runs a model."""

    AUTO = "auto"  # the first installed of the others, in this order
    LITERT = "litert"
    TFLITE_RUNTIME = "tflite-runtime"
    TENSORFLOW = "tensorflow"
