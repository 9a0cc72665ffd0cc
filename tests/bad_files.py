"""Bad files and folders for the bad-input tables (tests/test_reliability.py, tests/test_runtime_bad_input.py)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator
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


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _entropy(bits: str) -> bytes:
    """Huffman-coded bits as JPEG stores them: padded with 1s, each 0xFF byte followed by a 0x00."""
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    return data.replace(b"\xff", b"\xff\x00")


def progressive_jpeg(path: Path, width: int, height: int, components: int = 4) -> None:
    """A real progressive JPEG (CMYK for 4 components) of one flat colour, written without ever holding its pixels.

    Pillow writes one too, but encoding a 13000x13000 CMYK image holds the pixels and every coefficient (1.96 GB
    measured); this writes the scans directly: a DC scan of all components (every difference 0, one bit each),
    then one AC scan per component of end-of-band runs. 13000x13000: 1.3 MB on disk, 1.35 GB of coefficients
    for libjpeg to hold while decoding it.
    """
    blocks = -(-width // 8) * -(-height // 8)
    frame = struct.pack(">BHHB", 8, height, width, components)
    frame += b"".join(struct.pack(">BBB", index + 1, 0x11, 0) for index in range(components))
    dc_table = _segment(0xC4, bytes([0x00, 1, *[0] * 15, 0]))  # one symbol (difference 0) coded as "0"
    # End-of-band runs of 2**n (+ n more bits) coded as n in 4 bits.
    ac_table = _segment(0xC4, bytes([0x10, 0, 0, 0, 15, *[0] * 12, *(r << 4 for r in range(15))]))
    dc_scan = bytes([components, *(b for index in range(components) for b in (index + 1, 0x00)), 0, 0, 0])
    parts = [b"\xff\xd8", _segment(0xDB, bytes([0]) + bytes([1] * 64)), _segment(0xC2, frame), dc_table, ac_table]
    parts += [_segment(0xDA, dc_scan), b"\x00" * (blocks * components // 8), _entropy("0" * (blocks * components % 8))]
    runs, left = [], blocks
    while left:
        run = min(left, 32767)
        size = run.bit_length() - 1
        runs.append(format(size, "04b") + (format(run - (1 << size), f"0{size}b") if size else ""))
        left -= run
    for index in range(components):
        parts += [_segment(0xDA, bytes([1, index + 1, 0x00, 1, 63, 0])), _entropy("".join(runs))]
    path.write_bytes(b"".join(parts) + b"\xff\xd9")


def zip_with_many_members(path: Path, members: dict[str, bytes], extra: int) -> None:
    """A real zip of `members` (stored) and `extra` more empty ones (ZIP64 end records past 65,535 entries), written
    a header at a time: zipfile keeps an object per member while writing (31 s and 447 MB for a million)."""
    local, central = struct.Struct("<IHHHHHIIIHH"), struct.Struct("<IHHHHHHIIIHHHHHII")

    def entries() -> Iterator[tuple[bytes, bytes]]:
        yield from ((name.encode(), data) for name, data in members.items())
        yield from ((f"extra/{index:09d}".encode(), b"") for index in range(extra))

    with open(path, "wb") as stream:
        for name, data in entries():
            size, crc = len(data), zlib.crc32(data)
            stream.write(local.pack(0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0) + name + data)
        start = offset = stream.tell()
        at = 0
        for name, data in entries():
            size, crc = len(data), zlib.crc32(data)
            record = central.pack(0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0, 0, 0, 0, 0, at)
            offset += stream.write(record + name)
            at += local.size + len(name) + size
        count, size = len(members) + extra, offset - start
        stream.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start))
        stream.write(struct.pack("<IIQI", 0x07064B50, 0, offset, 1))
        stream.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))


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
