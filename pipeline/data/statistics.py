"""What the training images look like, for the device to tell when its images do not (metadata's `image_stats`).

Recorded at training time from up to 2,000 training images as the model sees them (its size and colour, inverted
when the model inverts): the typical brightness and its spread between images, and how colourful they are,
beside the data's native size and channels. `edge_runtime.input_check` compares what `predict` is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from .dataset import Dataset, NativeFormat

SAMPLE = 2000


def colour_spread(pixels: np.ndarray) -> float:
    """Mean over pixels of max(R, G, B) - min(R, G, B): 0 for gray images, ~40-80 for everyday colour photos."""
    if pixels.shape[-1] != 3:
        return 0.0
    values = pixels.astype(np.int16)
    return float((values.max(axis=-1) - values.min(axis=-1)).mean())


def image_stats(dataset: Dataset, spec: InputSpec, native: NativeFormat) -> dict[str, Any]:
    """The `image_stats` block of metadata.json's `dataset`."""
    images = dataset.train.images
    count = len(dataset.train)
    chosen = np.sort(np.random.default_rng(0).choice(count, size=min(SAMPLE, count), replace=False))
    pixels = np.asarray(images[chosen]).astype(np.float32)
    if spec.invert:
        pixels = 255.0 - pixels
    means = pixels.reshape(len(chosen), -1).mean(axis=1)
    colour = 0.0 if native.channels == 1 else (colour_spread(pixels) if pixels.shape[-1] == 3 else None)
    return {
        "native": {"height": native.height, "width": native.width, "channels": native.channels},
        "brightness": {"mean": round(float(means.mean()), 2), "std": round(float(means.std()), 2)},
        "colour": None if colour is None else round(colour, 2),
        "images": len(chosen),
    }
