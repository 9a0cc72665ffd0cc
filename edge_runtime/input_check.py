"""Does what `predict` is given look like what the model was trained on? One line when it clearly does not.

A Fashion-MNIST model shown colour photos of bags answers "tshirt 0.72" with confidence: nothing in its
scores says the input is unlike anything it learned. The training stage records what its images look like
(metadata.json, `dataset.image_stats`: native size and channels, brightness as the model sees it, colour);
here each image given is measured the same way, and a run's images far from that get one line saying how
and what the model expects. A record that is missing or malformed (the folder is untrusted) means no check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

COLOURFUL = 20.0  # mean max-min of R, G, B: gray images are 0, everyday photos 30-80
SIZE_FACTOR = 4.0  # sides this many times the training images' (or a quarter of them)
BRIGHTNESS_SIGMAS = 3.0  # mean brightness this many spreads of the training images' away
BRIGHTNESS_LEVELS = 40.0  # ... and at least this many levels of 255
MAX_SEEN = 1000  # images measured per run
COLOUR_SAMPLES = 30  # of them decoded in colour for the colour check (gray models decode JPEG as gray)


def _finite(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if low <= value <= high else None


@dataclass(frozen=True)
class TrainingImages:
    """What the training images looked like (from metadata.json's dataset.image_stats)."""

    height: int
    width: int
    channels: int
    brightness: float
    spread: float
    colour: float | None

    @classmethod
    def from_record(cls, dataset: Any) -> TrainingImages | None:
        stats = dataset.get("image_stats") if isinstance(dataset, dict) else None
        if not isinstance(stats, dict):
            return None
        native, light = stats.get("native"), stats.get("brightness")
        if not isinstance(native, dict) or not isinstance(light, dict):
            return None
        numbers = (_finite(native.get("height"), 1, 100_000), _finite(native.get("width"), 1, 100_000),
                   _finite(native.get("channels"), 1, 4), _finite(light.get("mean"), 0, 255),
                   _finite(light.get("std"), 0, 255))  # fmt: skip
        if any(n is None for n in numbers):
            return None
        height, width, channels, mean, std = numbers
        colour = _finite(stats.get("colour"), 0, 255)
        return cls(int(height), int(width), int(channels), mean, std, colour)  # type: ignore[arg-type]


def colour_spread(image: Image.Image) -> float:
    """Mean max-min of R, G, B over a small copy of the image (0 for gray)."""
    if image.mode != "RGB":
        return 0.0
    small = np.asarray(image.reduce(max(1, min(image.size) // 64)), dtype=np.int16)
    return float((small.max(axis=-1) - small.min(axis=-1)).mean())


@dataclass
class InputWatch:
    """Measures each image `predict` is given; `note()` says once whether they are far from the training images."""

    training: TrainingImages
    model: str = "the model"
    sides: list[float] = field(default_factory=list)  # the longer side of each original, over the training's
    colours: list[float] = field(default_factory=list)
    brightness: list[float] = field(default_factory=list)
    said: bool = False

    def see(self, image: Image.Image, pixels: np.ndarray) -> None:
        """`image`: decoded, 8-bit L or RGB, before resizing; `pixels`: what the model is fed (uint8)."""
        if len(self.sides) >= MAX_SEEN:  # a camera stream: the first images say enough
            return
        width, height = image.info.get("original_size", image.size)
        self.sides.append(max(width, height) / max(self.training.width, self.training.height))
        if image.mode == "RGB":
            self.colours.append(colour_spread(image))
        elif image.info.get("original_mode", image.mode) in ("L", "1", "I", "F", "I;16"):
            self.colours.append(0.0)  # gray in the file; a colour JPEG decoded as gray tells nothing here
        self.brightness.append(float(pixels.mean()))

    @property
    def wants_colour(self) -> bool:
        """Decode in colour for now: the colour check has not seen COLOUR_SAMPLES images yet."""
        return len(self.colours) < COLOUR_SAMPLES

    def _differences(self) -> list[str]:
        found, training = [], self.training
        size = f"{training.width}x{training.height}"
        colourful = bool(self.colours) and float(np.median(self.colours)) > COLOURFUL
        if training.channels == 1 and (training.colour or 0.0) < COLOURFUL / 4 and colourful:
            found.append("colour photos (it learned grayscale images)")
        side = float(np.median(self.sides))
        if side > SIZE_FACTOR or side < 1 / SIZE_FACTOR:
            found.append(f"{side:.3g}x the size of its training images ({size})")
        mean, away = float(np.mean(self.brightness)), float(np.mean(self.brightness)) - training.brightness
        if abs(away) > max(BRIGHTNESS_SIGMAS * training.spread, BRIGHTNESS_LEVELS):
            inverted = abs((255 - mean) - training.brightness) <= max(BRIGHTNESS_SIGMAS * training.spread, 20.0)
            found.append(
                f"{'brighter' if away > 0 else 'darker'} than its training images (mean {mean:.0f} of 255 as the model "
                f"sees them, against {training.brightness:.0f} +- {training.spread:.0f})"
                + (
                    "; inverted they would match: try --invert (dark objects on a light background?)"
                    if inverted
                    else ""
                )
            )
        return found

    def note(self) -> str | None:
        """The one line, the first time there is something to say (None after that, and when all is well)."""
        if self.said or not self.sides:
            return None
        differences = self._differences()
        if not differences:
            return None
        self.said = True
        kind = "grayscale" if self.training.channels == 1 else "colour"
        return (
            f"these {len(self.sides)} image(s) are unlike what {self.model} was trained on: {'; '.join(differences)}. "
            "Its answers may be confident and wrong; show it images like its training data "
            f"({self.training.width}x{self.training.height}, {kind})"
        )
