"""The preprocessing and the class head put inside a Keras or SavedModel graph, so the folder's model takes raw pixels
and gives probabilities, as a model edge-pipeline trains does.

Measured before this was written (issue #30, 5 Fashion-MNIST classes at 96x96): a model expecting ImageNet-normalised
input, with the normalization recorded beside it instead, agreed 48% (float32) and 24% (int8) with Keras; with the
normalization inside the graph, 100% and 98.2%. So `(pixel - mean) / std` (and an RGB-to-BGR swap) is one 1x1
convolution in front of the source, with fixed weights: exact for float32, and calibrated with the rest for int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.normalization import Values, per_channel

from ..errors import ConversionError, SourceError


@dataclass(frozen=True)
class Preprocessing:
    """What the source expects of RGB 0..255 pixels: `(pixel - mean) / std`, channels reversed first when `bgr`."""

    mean: Values = 0.0
    std: Values = 1.0
    bgr: bool = False

    def weights(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """The 1x1 convolution doing it: kernel (1, 1, channels, channels) and bias (channels,)."""
        mean, std = per_channel(self.mean, channels), per_channel(self.std, channels)
        kernel = np.zeros((1, 1, channels, channels), np.float32)
        for out in range(channels):
            source = channels - 1 - out if self.bgr else out  # BGR: output channel 0 (B) reads input channel 2
            kernel[0, 0, source, out] = 1.0 / std[out]
        return kernel, (-mean / std).astype(np.float32)

    @property
    def needed(self) -> bool:
        from edge_runtime.normalization import is_raw

        return self.bgr or not is_raw(self.mean, self.std)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """The same arithmetic on an array (N, H, W, C) of raw pixels: what the source itself is fed."""
        from edge_runtime.normalization import normalized

        values = np.asarray(pixels, np.float32)
        return normalized(values[..., ::-1] if self.bgr else values, self.mean, self.std)


# How far a row of probabilities may sum from 1: an int8 softmax's outputs are multiples of 1/256 (measured: a 5-class
# int8 source's rows summed up to 0.012 away from 1); logits are far outside.
SUM_TOLERANCE = 0.05


def probabilities(scores: np.ndarray) -> bool:
    """True when every row is already a probability vector (in [0, 1], summing to 1)."""
    scores = np.asarray(scores, np.float64)
    if not scores.size or scores.min() < -1e-6 or scores.max() > 1 + 1e-6:
        return False
    return bool(np.allclose(scores.sum(axis=1), 1.0, atol=SUM_TOLERANCE))


def keras_model(source: Any, shape: tuple[int, int, int], pre: Preprocessing, output: int, softmax: bool) -> Any:
    """`source` behind a raw-pixel input (preprocessing inside), its class output alone, softmax-ed when asked."""
    import keras

    inputs = keras.Input(shape, name="image", dtype="float32")
    x = inputs
    if pre.needed:
        layer = keras.layers.Conv2D(shape[2], 1, name="preprocessing", trainable=False)
        x = layer(x)
        layer.set_weights(list(pre.weights(shape[2])))
    outputs = source(x)
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]
    chosen = outputs[output] if isinstance(outputs, list | tuple) else outputs
    if softmax:
        chosen = keras.layers.Softmax(name="probabilities")(chosen)
    return keras.Model(inputs, chosen, name="imported")


# --- SavedModel: a tf.function around its serving signature ------------------------------------------


def serving(path: Path) -> tuple[Any, Any, str, list[str]]:
    """(loaded SavedModel, its serving function, the input's keyword, output names in order)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001 - TensorFlow raises anything for a folder it cannot read
        raise SourceError(
            f"{path}: TensorFlow cannot load this SavedModel ({' '.join(str(error).split())[:200]})"
        ) from None
    signatures = dict(loaded.signatures)
    if not signatures:
        raise SourceError(f"{path}: this SavedModel has no serving signature; export it with one (model.export)")
    function = signatures.get("serving_default") or next(iter(signatures.values()))
    _, keywords = function.structured_input_signature
    outputs = sorted(function.structured_outputs)
    return loaded, function, next(iter(keywords)) if len(keywords) == 1 else "", outputs


def saved_model_input_shapes(function: Any) -> list[list[int | None]]:
    _, keywords = function.structured_input_signature
    return [list(spec.shape) for spec in keywords.values()]


def saved_model_tflite(path: Path, shape: tuple[int, int, int], pre: Preprocessing, output: str, softmax: bool,
                       workdir: Path) -> bytes:  # fmt: skip
    """The SavedModel behind a raw-pixel input, its class output alone (softmax-ed when asked), as float32 TFLite."""
    import tensorflow as tf

    loaded, function, keyword, _ = serving(path)
    kernel, bias = (tf.constant(v) for v in pre.weights(shape[2]))

    class Imported(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.source = loaded  # tracked: its variables are saved with the wrapper

        @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32, name="image")])
        def serve(self, image: Any) -> dict[str, Any]:
            x = tf.nn.conv2d(image, kernel, 1, "VALID") + bias if pre.needed else image
            scores = function(**{keyword: x})[output]
            return {"probabilities": tf.nn.softmax(scores) if softmax else scores}

    wrapped = Imported()
    target = workdir / "imported_saved_model"
    tf.saved_model.save(wrapped, str(target), signatures={"serving_default": wrapped.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(target))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return bytes(converter.convert())
    except Exception as error:  # noqa: BLE001 - the converter raises anything
        raise ConversionError(
            f"{path}: the TFLite converter cannot convert it ({str(error).splitlines()[0][:200]})"
        ) from None
