"""The one piece of arithmetic that turns pixels into what a model takes: ``(pixel - mean) / std``, per channel.

A model folder's ``input`` says it (``mean``/``std``: one number, or one per channel in the image's channel
order, RGB), and every stage applies it through `normalized`: the device's predictor, the pipeline's int8
calibration and its reference model (an imported ``.tflite`` takes normalised values; models edge-pipeline
trains or imports from Keras take raw pixels, mean 0 and std 1). The command lines parse per-channel values
with `parse_values` (``123.675,116.28,103.53``).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UsageError

Values = float | tuple[float, ...]  # one value for every channel, or one per channel
RAW = (0.0, 1.0)  # mean and std of raw pixels: nothing to compute


def per_channel(value: Values, channels: int) -> np.ndarray:
    """`value` as float32 (channels,): a single number repeated, a per-channel tuple as it is."""
    values = np.asarray(value if isinstance(value, tuple) else (value,) * channels, dtype=np.float32)
    if values.shape != (channels,):
        raise UsageError(f"{len(values)} values for an image of {channels} channel(s)")
    return values


def is_raw(mean: Values, std: Values) -> bool:
    """True when (mean, std) leave pixels as they are: 0 and 1 for every channel."""
    means = mean if isinstance(mean, tuple) else (mean,)
    stds = std if isinstance(std, tuple) else (std,)
    return all(m == 0.0 for m in means) and all(s == 1.0 for s in stds)


def normalized(pixels: np.ndarray, mean: Values, std: Values) -> np.ndarray:
    """float32 ``(pixels - mean) / std`` over the last axis (channels); pixels (..., channels) as uint8 or float."""
    values = np.asarray(pixels, dtype=np.float32)
    channels = values.shape[-1]
    return (values - per_channel(mean, channels)) / per_channel(std, channels)


def parse_values(text: str | float, name: str, positive: bool = False) -> Values:
    """`--mean 127.5` or `--mean 123.675,116.28,103.53` as a number or a tuple of 3; UsageError naming `name`."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [text]
    try:
        values = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise UsageError(f"{name} wants a number or three comma-separated numbers (R,G,B), got {text!r}") from None
    if len(values) not in (1, 3):
        raise UsageError(f"{name} wants one number or three (R,G,B), got {len(values)}: {text!r}")
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{name} wants finite numbers, got {text!r}")
    if positive and not all(v > 0 for v in values):
        raise UsageError(f"{name} must be above 0, got {text!r}")
    return values[0] if len(values) == 1 else values


def shown(value: Values) -> str:
    """A value as the command line writes it: ``127.5`` or ``123.675,116.28,103.53``."""
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"
