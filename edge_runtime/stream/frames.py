"""Frames from a stream: concatenated JPEG (Motion JPEG, as rpicam-vid and ffmpeg write it) and PNG, split by
their own structure in one pass while reading, never by buffering the whole stream.

A JPEG is walked marker by marker (segments skipped by their length, so an EXIF thumbnail's markers inside
APP1 are not mistaken for the frame's; the entropy-coded data after SOS scanned for the next marker, FF00
stuffing and RSTn skipped) up to its EOI; a PNG chunk by chunk up to IEND. The first frame start whose walk
ends in a frame within the cap wins; bytes before it are skipped and counted. A start whose walk breaks (a
byte that is not a marker, a second SOI, a chunk that is not one) is not a frame; one whose walk passes
its cap is dropped as oversized (counted, never held); one cut short by the end of the stream is truncated.

Linear whatever the bytes (issue #28: FF D8 FF repeated once made each apparent start walk on to its 16 MB
cap, ~30 hours for 17 MB). Every frame start is walked at once, in one sweep over the stream
(edge_runtime.stream.sweep): starts whose walks reach the same position go on as one, so a position is
stepped once however many starts lead to it, and entropy-coded data and runs of fill bytes are scanned once.
`FrameSplitter.examined` counts the bytes looked at (measured: 2 a byte for camera streams, at most 5 for
the hostile patterns of tests/hostile_streams.py); the buffer holds at most the cap and one read.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..limits import MAX_FRAME_KB, whole_number
from .sweep import Sweep

READ_SIZE = 1 << 16
MAX_FRAME_BYTES = 16 << 20  # a 4K camera's JPEG is 1-3 MB; PNG screenshots a few MB


@dataclass
class Frame:
    """One encoded image of a stream: its number (from 1), what it is, and where it started."""

    index: int
    data: bytes
    kind: str  # "jpeg" | "png" | "image" (a PIL image given directly)
    offset: int = 0
    image: Any = None  # a PIL image, for sources of images rather than bytes


@dataclass
class StreamCounts:
    """What a splitter saw besides frames."""

    frames: int = 0
    bytes_read: int = 0
    skipped_bytes: int = 0  # between frames (or of a frame that was not one)
    oversized: int = 0  # frames over the cap, dropped
    false_starts: int = 0  # frame starts not followed by a frame (or past the starts followed at once)
    truncated: int = 0  # bytes of a last frame cut short by the end of the stream


def check_frame_cap(max_frame_bytes: Any, name: str = "max_frame_bytes") -> int:
    """The frame cap as a whole number of bytes from 1 to 64 MB, else one UsageError line."""
    return whole_number(max_frame_bytes, name, 1, MAX_FRAME_KB << 10, "the stream reader holds a few frames at once")


class FrameSplitter:
    """Iterate over the frames of a byte stream; `counts` says what else was in it, `examined` how many bytes
    the split looked at (at most a few times the bytes read, whatever they are)."""

    def __init__(self, read: Callable[[int], bytes], max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = check_frame_cap(max_frame_bytes)
        self.counts = StreamCounts()
        self._sweep = Sweep(read, self.max_frame_bytes, self.counts, READ_SIZE)

    @property
    def examined(self) -> int:
        return self._sweep.examined

    @property
    def peak_open(self) -> int:
        """The most frame starts followed at once so far (at most edge_runtime.stream.sweep.MAX_OPEN)."""
        return self._sweep.peak_open

    def __iter__(self) -> Iterator[Frame]:
        for start, _, kind, data in self._sweep.frames():
            self.counts.frames += 1
            yield Frame(self.counts.frames, data, kind, start)


def _reader(stream: BinaryIO) -> Callable[[int], bytes]:
    """What returns as soon as some bytes are there (a live pipe must not wait for a full read)."""
    read1 = getattr(stream, "read1", None)
    return read1 if callable(read1) else stream.read


def frames_of(source: Any, max_frame_bytes: int = MAX_FRAME_BYTES) -> tuple[Iterator[Frame], StreamCounts]:
    """Frames of a binary file object, of an iterable of bytes (chunks or whole images, joined), or of PIL images."""
    check_frame_cap(max_frame_bytes)
    if hasattr(source, "read"):
        splitter = FrameSplitter(_reader(source), max_frame_bytes)
        return iter(splitter), splitter.counts
    if isinstance(source, bytes | bytearray | memoryview):
        splitter = FrameSplitter(io.BytesIO(bytes(source)).read, max_frame_bytes)
        return iter(splitter), splitter.counts
    items = iter(source)
    first = next(items, None)
    if first is None:
        return iter(()), StreamCounts()
    if isinstance(first, bytes | bytearray | memoryview):
        splitter = FrameSplitter(_ChunkReader([first], items).read, max_frame_bytes)
        return iter(splitter), splitter.counts
    counts = StreamCounts()
    return _images(first, items, counts), counts


def _images(first: Any, rest: Iterator[Any], counts: StreamCounts) -> Iterator[Frame]:
    for image in itertools.chain([first], rest):
        counts.frames += 1
        yield Frame(counts.frames, b"", "image", 0, image)


class _ChunkReader:
    """A `read` over an iterator of byte chunks."""

    def __init__(self, first: list[bytes], rest: Iterable[bytes]) -> None:
        self._pending, self._rest = list(first), iter(rest)

    def read(self, size: int) -> bytes:
        if not self._pending:
            chunk = next(self._rest, None)
            if chunk is None:
                return b""
            self._pending.append(bytes(chunk))
        chunk = self._pending.pop(0)
        if len(chunk) > size:
            self._pending.insert(0, chunk[size:])
            chunk = chunk[:size]
        return bytes(chunk)
