"""Bad files and folders for the bad-input tables (tests/test_reliability.py, tests/test_runtime_bad_input.py)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A real PNG whose header claims more pixels than it is safe to decode."""
    raw = b"\x00" + b"\x00" * 8

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def truncated_png(path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    image.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@dataclass
class Workspace:
    root: Path
    folder: Path  # a copy of the trained model folder
    images: Path  # a good image folder
    fashion: tuple


def edit_metadata(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "metadata.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def class_folders(root: Path, layout: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, count in layout.items():
        (root / name).mkdir()
        for index in range(count):
            Image.new("L", (12, 12), color=(index * 37) % 256).save(root / name / f"{index}.png")
    return root


def build_two_output_model(folder: Path) -> Path:
    """A real TFLite model that is not a classifier: one image in, two outputs."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(4)(flat), keras.layers.Dense(2)(flat)])
    model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
    path = folder / "two_outputs.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved")).convert())
    return path


Setup = Callable[[Workspace], list[str]]  # a case's preparation: makes its bad input, returns the command line
