"""Frames from a stream: concatenated JPEG (Motion JPEG, as rpicam-vid and ffmpeg write it) and PNG, split by
their own structure while reading, never by buffering the whole stream.

A JPEG is walked marker by marker (segments skipped by their length, so an EXIF thumbnail's markers inside
APP1 are not mistaken for the frame's; the entropy-coded data after SOS scanned for the next real marker)
up to its EOI; a PNG chunk by chunk up to IEND. Bytes between frames are skipped and counted; a frame
larger than the cap is dropped while it streams past (counted, never held); a frame cut short by the end
of the stream is reported as truncated. The buffer holds at most one frame and one read.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

JPEG_START = b"\xff\xd8\xff"
PNG_START = b"\x89PNG\r\n\x1a\n"
READ_SIZE = 1 << 16
MAX_FRAME_BYTES = 16 << 20  # a 4K camera's JPEG is 1-3 MB; PNG screenshots a few MB
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn: markers without a length


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
    oversized: list[int] = field(default_factory=list)  # offsets of frames over the cap, dropped
    truncated: int = 0  # bytes of a last frame cut short by the end of the stream


class _Broken(Exception):
    """The bytes after a frame's start are not that kind of frame: resynchronise after its first byte."""


class _TooLarge(Exception):
    """The frame passed the size cap."""


class FrameSplitter:
    """Iterate over the frames of a byte stream; `counts` says what else was in it."""

    def __init__(self, read: Callable[[int], bytes], max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._read = read
        self.max_frame_bytes = max_frame_bytes
        self.counts = StreamCounts()
        self._buffer = bytearray()
        self._offset = 0  # the stream offset of _buffer[0]
        self._eof = False

    def _more(self) -> bool:
        if self._eof:
            return False
        chunk = self._read(READ_SIZE)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        self.counts.bytes_read += len(chunk)
        return True

    def _need(self, size: int) -> None:
        """At least `size` bytes buffered; EOFError when the stream ends first; _TooLarge past the cap."""
        if size > self.max_frame_bytes:
            raise _TooLarge
        while len(self._buffer) < size:
            if not self._more():
                raise EOFError

    def _drop(self, size: int, skipped: bool = True) -> None:
        del self._buffer[:size]
        self._offset += size
        if skipped:
            self.counts.skipped_bytes += size

    def _to_start(self) -> str | None:
        """Skip to the next frame's first byte; its kind, or None at the end of the stream."""
        while True:
            found = [(i, kind) for kind, mark in (("jpeg", JPEG_START), ("png", PNG_START))
                     if (i := self._buffer.find(mark)) >= 0]  # fmt: skip
            if found:
                start, kind = min(found)
                self._drop(start)
                return kind
            keep = len(PNG_START) - 1  # a start marker may straddle two reads
            if len(self._buffer) > keep:
                self._drop(len(self._buffer) - keep)
            if not self._more():
                self._drop(len(self._buffer))
                return None

    def _entropy_end(self, position: int) -> int:
        """The position of the first marker after entropy-coded data (0xFF not followed by 0x00 or RSTn)."""
        while True:
            found = self._buffer.find(b"\xff", position)
            if found < 0:
                position = len(self._buffer)
                self._need(position + 1)
                continue
            self._need(found + 2)
            following = self._buffer[found + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position = found + 2
                continue
            return found

    def _jpeg_end(self) -> int:
        position = 2
        while True:
            self._need(position + 2)
            if self._buffer[position] != 0xFF:
                raise _Broken
            marker = self._buffer[position + 1]
            if marker == 0xFF:  # fill byte
                position += 1
            elif marker == 0xD9:  # EOI
                return position + 2
            elif marker in _STANDALONE:
                position += 2
            else:
                self._need(position + 4)
                length = int.from_bytes(self._buffer[position + 2 : position + 4], "big")
                if length < 2:
                    raise _Broken
                position += 2 + length
                if marker == 0xDA:  # SOS: entropy-coded data follows
                    self._need(position)
                    position = self._entropy_end(position)

    def _png_end(self) -> int:
        position = len(PNG_START)
        while True:
            self._need(position + 8)
            length = int.from_bytes(self._buffer[position : position + 4], "big")
            kind = bytes(self._buffer[position + 4 : position + 8])
            if length > self.max_frame_bytes or not kind.isalpha():
                raise _Broken
            position += 12 + length
            if kind == b"IEND":
                self._need(position)
                return position

    def _skip_oversized(self) -> None:
        """Drop a frame over the cap as it streams past: up to the next frame's start."""
        self.counts.oversized.append(self._offset)
        self._drop(1)

    def __iter__(self) -> Iterator[Frame]:
        while (kind := self._to_start()) is not None:
            try:
                end = self._jpeg_end() if kind == "jpeg" else self._png_end()
            except _Broken:
                self._drop(1)
                continue
            except _TooLarge:
                self._skip_oversized()
                continue
            except EOFError:
                self.counts.truncated = len(self._buffer)
                self._drop(len(self._buffer), skipped=False)
                return
            self.counts.frames += 1
            frame = Frame(self.counts.frames, bytes(self._buffer[:end]), kind, self._offset)
            self._drop(end, skipped=False)
            yield frame


def _reader(stream: BinaryIO) -> Callable[[int], bytes]:
    """What returns as soon as some bytes are there (a live pipe must not wait for a full read)."""
    read1 = getattr(stream, "read1", None)
    return read1 if callable(read1) else stream.read


def frames_of(source: Any, max_frame_bytes: int = MAX_FRAME_BYTES) -> tuple[Iterator[Frame], StreamCounts]:
    """Frames of a binary file object, of an iterable of bytes (chunks or whole images, joined), or of PIL images."""
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
