"""What the training images look like, for the device to tell when its images do not (metadata's `image_stats`).

Recorded at training time from up to 2,000 training images as the model sees them (its size and colour, inverted
when the model inverts): the typical brightness and its spread between images, and how colourful they are,
beside the data's native size and channels. `edge_runtime.input_check` compares what `predict` is given.

The images are read CHUNK at a time and reduced to sums as they go: memory holds one chunk, whatever the number
of images. Holding all 2,000 at once (float32, plus an int16 copy) took 0.9 GB at 160 px and 1.8 GB at 224 px.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from .dataset import Dataset, NativeFormat

SAMPLE = 2000
CHUNK = 32  # images in memory at once: 32 x 224 x 224 x 3 bytes = 4.8 MB, and 4.8 MB of work arrays


def _spread_sum(pixels: np.ndarray) -> float:
    """Sum over pixels of max(R, G, B) - min(R, G, B) (0 for gray, ~40-80 a pixel for everyday colour photos);
    exact: integer sums in float64."""
    return float(pixels.max(axis=-1).sum(dtype=np.float64) - pixels.min(axis=-1).sum(dtype=np.float64))


def image_stats(dataset: Dataset, spec: InputSpec, native: NativeFormat) -> dict[str, Any]:
    """The `image_stats` block of metadata.json's `dataset`."""
    images = dataset.train.images
    count = len(dataset.train)
    chosen = np.sort(np.random.default_rng(0).choice(count, size=min(SAMPLE, count), replace=False))
    colourful = native.channels != 1 and images.shape[-1] == 3
    means = np.empty(len(chosen), np.float64)
    spread, pixels = 0.0, 0
    for start in range(0, len(chosen), CHUNK):
        chunk = np.asarray(images[chosen[start : start + CHUNK]])  # uint8, as the model sees them
        means[start : start + len(chunk)] = chunk.reshape(len(chunk), -1).mean(axis=1, dtype=np.float64)
        if colourful:
            spread += _spread_sum(chunk)  # the same when inverted: 255 - x keeps max - min
            pixels += chunk[..., 0].size
    if spec.invert:
        means = 255.0 - means
    colour = 0.0 if native.channels == 1 else (spread / max(1, pixels) if colourful else None)
    return {
        "native": {"height": native.height, "width": native.width, "channels": native.channels},
        "brightness": {"mean": round(float(means.mean()), 2), "std": round(float(means.std()), 2)},
        "colour": None if colour is None else round(colour, 2),
        "images": len(chosen),
    }
