"""What decoding one image will hold in memory, worked out from its header before a pixel is decoded.

Counting decoded pixels alone missed most of it: a 2.6 MB progressive CMYK JPEG of 13000x13000 decoded at 1/8
scale has 26 MB of pixels, but libjpeg first holds every DCT coefficient of the full-size image (8 bytes a pixel
for CMYK: 1.3 GB), and `predict` peaked at 1,360 MB. The cost counted here is the peak of the whole way to the
model's pixels (`edge_runtime.images`: decode, `to_eight_bit`, `prepare_pixels`):

- the decoded image as Pillow stores it: 1 byte a pixel for modes 1, L and P, 2 for I;16, 4 for the rest
  (RGB is stored as 4);
- what the decoder holds while it runs: libjpeg's full-size coefficient buffers (2 bytes per coefficient, 64
  per 8x8 block of each component, at the file's sampling) when a JPEG has more than one scan (progressive,
  or a first scan without every component), whatever scale it is decoded at; libtiff's strip buffer and the
  compressed strip; Pillow's BMP RLE buffers;
- what a decoder keeps as long as the image lives: libwebp's two canvases and the frame's bytes (12 bytes a
  pixel, measured);
- after the decoder is gone, the larger of the copy `exif_transpose` makes of a rotated photo and the
  conversions to the model's 8-bit L or RGB, each copy counted (an RGBA PNG: 12 bytes a pixel beside it;
  it was 20 before `to_eight_bit` stopped copying it twice, measured 230 against 138 MB at 12 megapixels);
- 1 byte a pixel and 8 MB of slack (decoders' row buffers, the allocator).

Checked against the peak resident memory of a real process for 18 modes and formats
(tests/test_memory_bounds.py): never below it, and at most 5 times it.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

# One image's decode (docs/model-folder.md, "Limits"): 256 MB, about 43 megapixels of an RGB PNG, 14 of an RGBA
# PNG or a WebP, 83 of a progressive JPEG (32 in CMYK); a baseline JPEG decoded at 1/8 scale fits at any size.
DECODE_BUDGET = 256 << 20
SLACK_BYTES = 8 << 20

HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_ONE_BYTE = ("1", "L", "P")
_PROGRESSIVE_SOF = (0xC2, 0xC6, 0xCA, 0xCE)
_SOS = 0xDA
_NO_LENGTH = frozenset({0x00, 0x01, *range(0xD0, 0xDA)})  # markers without a length: RSTn, SOI, EOI, TEM


@dataclass(frozen=True)
class DecodeCost:
    """Bytes decoding one image holds at its peak, and what the file is, for the message when it is too much."""

    total: int
    multi_scan: bool = False  # a JPEG libjpeg keeps whole in coefficients (progressive, or scans per component)

    def describe(self, image: Image.Image) -> str:
        width, height = image.info.get("original_size", image.size)
        mode = image.info.get("original_mode", image.mode)
        kind = ("progressive " if image.info.get("progressive") else "multi-scan ") if self.multi_scan else ""
        return f"a {width}x{height} {mode} {kind}{image.format or 'image'}"


def stored_bytes(mode: str) -> int:
    """Bytes a pixel of `mode` takes in Pillow's memory."""
    if mode in _ONE_BYTE:
        return 1
    return 2 if mode.startswith("I;16") else 4


def _conversion_bytes(image: Image.Image, target: str) -> int:
    """Bytes a pixel the conversions to `target` (L; RGB, perhaps then L) hold beside the decoded image, every copy
    counted."""
    mode = image.mode
    if mode in HIGH_BIT_MODES:
        work, mode = stored_bytes(mode) + 4 + 2, "L"  # Pillow's bytes, float32 values, uint8 and its image
    elif mode in ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        work, mode = 4 + 4 + 4, "RGB"  # as RGBA, white and composited; then RGB, white gone
    elif mode not in ("L", "RGB"):
        work, mode = 4, "RGB"  # 1, P, CMYK, YCbCr, LAB, HSV, ... to RGB
    else:
        work = 0
    if mode != target:
        work += stored_bytes(target)
    elif mode == "RGB":
        work += 1  # decoded in colour for the input check, then L for a grayscale model
    return work


@dataclass(frozen=True)
class _JpegLayout:
    frame: int  # the SOFn marker
    width: int  # full size, whatever scale it is drafted to
    height: int
    first_scan: int  # components in the first scan


def _jpeg_layout(stream: BinaryIO) -> _JpegLayout | None:
    """The frame and first scan of a JPEG, from its markers; None when they cannot be read."""
    frame, size = 0, (0, 0)
    stream.seek(2)
    while True:
        byte = stream.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue  # junk between markers, as Pillow and libjpeg skip it
        marker = stream.read(1)
        while marker == b"\xff":
            marker = stream.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _NO_LENGTH:
            continue
        length = int.from_bytes(stream.read(2), "big")
        if code == _SOS:
            count = stream.read(1)
            return _JpegLayout(frame, *size, count[0]) if count and frame else None
        if length < 2:
            return None
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            header = stream.read(5)
            frame, size = code, (int.from_bytes(header[3:5], "big"), int.from_bytes(header[1:3], "big"))
            stream.seek(length - 2 - len(header), os.SEEK_CUR)
            continue
        stream.seek(length - 2, os.SEEK_CUR)


def jpeg_coefficient_bytes(image: Image.Image) -> int:
    """libjpeg's whole-image coefficient buffers for a JPEG of several scans (0 for a single-scan JPEG).

    libjpeg decodes a single interleaved scan a row of blocks at a time; any other file (progressive, or a first
    scan that leaves out a component) is held whole as DCT coefficients until its last scan, at full size even
    when it is decoded at 1/8 scale (jdcoefct.c: one 128-byte block per 8x8 pixels of each component, rounded
    up to whole MCUs).
    """
    stream = image.fp
    try:
        position = stream.tell()
        layout = _jpeg_layout(stream)
        stream.seek(position)
    except (OSError, ValueError, AttributeError):
        layout = None  # no stream to read (counted from Pillow's header, as for a progressive file)
    components = getattr(image, "layer", [])
    if layout is not None and layout.frame not in _PROGRESSIVE_SOF and layout.first_scan >= len(components):
        return 0
    width, height = (layout.width, layout.height) if layout is not None else image.info.get("original_size", (0, 0))
    if not width or not height:  # unreadable markers, or a height left to a DNL marker: Pillow's full size
        width, height = image.info.get("original_size", image.size)
    h_max = max((max(1, c[1]) for c in components), default=1)
    v_max = max((max(1, c[2]) for c in components), default=1)
    blocks = 0
    for _, h, v, _ in components:
        h, v = max(1, h), max(1, v)
        across = math.ceil(math.ceil(width * h / (h_max * 8)) / h) * h
        down = math.ceil(math.ceil(height * v / (v_max * 8)) / v) * v
        blocks += across * down
    return blocks * 64 * 2


def _length(stream: BinaryIO | None) -> int:
    """Bytes in the image's stream (a BytesIO's getbuffer() would copy bytes it shares, so: seek to the end)."""
    if stream is None:
        return 0
    try:
        position = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(position)
    except (OSError, ValueError, AttributeError):
        return 0
    return end


def _tiff_pixel_bytes(image: Image.Image) -> int:
    """Bytes a pixel of a TIFF takes as its file stores it (8 when its tags do not say)."""
    tags = getattr(image, "tag_v2", {})
    try:
        bits = tags.get(258, (8,))
        samples = int(tags.get(277, 1))
        per_sample = max(int(b) for b in (bits if isinstance(bits, tuple) else (bits,)))
    except (TypeError, ValueError):
        return 8
    return max(1, math.ceil(samples * per_sample / 8)) if 0 < samples <= 16 and 0 < per_sample <= 64 else 8


def _decoder_bytes(image: Image.Image, file_bytes: int) -> tuple[int, int]:
    """(bytes the decoder holds while decoding, bytes it keeps while the image lives) beside the pixels."""
    pixels = image.size[0] * image.size[1]
    if image.format == "JPEG":
        return jpeg_coefficient_bytes(image), 0
    if image.format == "TIFF":
        return pixels * _tiff_pixel_bytes(image) + file_bytes, 0  # a strip as large as the image, compressed and not
    if image.format == "BMP":
        return pixels * 2, 0  # RLE: Pillow's bytearray of the pixels, then its bytes
    if image.format == "WEBP":
        return 0, pixels * 12
    return 0, 0


def turned(image: Image.Image) -> bool:
    """Whether `exif_transpose` will copy the image (EXIF orientation 2-8), as far as the file has told so far: a
    PNG's EXIF may follow its pixels, and Pillow would decode them to find it, so a PNG says only once loaded."""
    if image.format == "PNG" and "exif" not in image.info:
        return False
    stream = image.fp
    try:
        position = stream.tell() if stream is not None else None
        orientation = image.getexif().get(0x0112, 1)
        if stream is not None:
            stream.seek(position)  # a TIFF's EXIF is read from the file
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, struct.error):
        return False
    return orientation in range(2, 9)


def decode_cost(image: Image.Image, target: str) -> DecodeCost:
    """The peak memory of decoding `image` (opened, its draft scale set) and converting it to `target` (L or RGB).

    Before decoding it bounds what the decoder will hold; once the image is loaded, asking again also counts a
    rotation only then known (a PNG's EXIF after its pixels), before it is made.
    """
    pixels = image.size[0] * image.size[1]
    decoding, kept = _decoder_bytes(image, _length(image.fp))
    stored = pixels * stored_bytes(image.mode)
    # After decoding: the copy exif_transpose makes, gone before the conversions start.
    converting = pixels * max(_conversion_bytes(image, target), stored_bytes(image.mode) if turned(image) else 0)
    total = stored + kept + max(decoding, converting) + pixels + SLACK_BYTES
    return DecodeCost(total, multi_scan=image.format == "JPEG" and decoding > 0)
