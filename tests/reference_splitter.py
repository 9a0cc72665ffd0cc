"""The frame splitter as it was before issue #28, one start at a time: the oracle the linear one must agree with.

Each apparent frame start is walked on its own, up to its frame, a break, its cap or the end of the stream;
after a start that is not a frame the search goes on from the byte after it. Simple and quadratic: a test
oracle for small streams (tests/test_stream_bounds.py), never for a stream of any size. One change from the
old code, which the linear splitter makes too: a second SOI where a marker is expected breaks the walk
(the old code read the next two bytes as a segment length).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

JPEG_START = b"\xff\xd8\xff"
PNG_START = b"\x89PNG\r\n\x1a\n"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


class _Broken(Exception):
    pass


class _TooLarge(Exception):
    pass


class ReferenceSplitter:
    """(offset, bytes, kind) of each frame; `skipped`, `oversized`, `truncated` as FrameSplitter's counts."""

    def __init__(self, read: Callable[[int], bytes], cap: int) -> None:
        self._read, self.cap = read, cap
        self._buffer, self._offset, self._eof = bytearray(), 0, False
        self.skipped = self.oversized = self.truncated = 0

    def _more(self) -> bool:
        chunk = b"" if self._eof else self._read(1 << 16)
        self._eof = not chunk
        self._buffer += chunk
        return bool(chunk)

    def _need(self, size: int) -> None:
        if size > self.cap:
            raise _TooLarge
        while len(self._buffer) < size:
            if not self._more():
                raise EOFError

    def _drop(self, size: int, skipped: bool = True) -> None:
        del self._buffer[:size]
        self._offset += size
        self.skipped += size if skipped else 0

    def _to_start(self) -> str | None:
        while True:
            found = [(i, kind) for kind, mark in (("jpeg", JPEG_START), ("png", PNG_START))
                     if (i := self._buffer.find(mark)) >= 0]  # fmt: skip
            if found:
                start, kind = min(found)
                self._drop(start)
                return kind
            if len(self._buffer) > len(PNG_START) - 1:  # a start may straddle two reads
                self._drop(len(self._buffer) - len(PNG_START) + 1)
            if not self._more():
                self._drop(len(self._buffer))
                return None

    def _entropy_end(self, position: int) -> int:
        while True:
            found = self._buffer.find(b"\xff", position)
            if found < 0:
                position = len(self._buffer)
                self._need(position + 1)
                continue
            self._need(found + 2)
            if self._buffer[found + 1] == 0x00 or 0xD0 <= self._buffer[found + 1] <= 0xD7:
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
            if marker == 0xFF:
                position += 1
            elif marker == 0xD9:
                return position + 2
            elif marker == 0xD8:
                raise _Broken
            elif marker in _STANDALONE:
                position += 2
            else:
                self._need(position + 4)
                length = int.from_bytes(self._buffer[position + 2 : position + 4], "big")
                if length < 2:
                    raise _Broken
                position += 2 + length
                if marker == 0xDA:
                    self._need(position)
                    position = self._entropy_end(position)

    def _png_end(self) -> int:
        position = len(PNG_START)
        while True:
            self._need(position + 8)
            length = int.from_bytes(self._buffer[position : position + 4], "big")
            kind = bytes(self._buffer[position + 4 : position + 8])
            if length > self.cap or not kind.isalpha():
                raise _Broken
            position += 12 + length
            if kind == b"IEND":
                self._need(position)
                return position

    def __iter__(self) -> Iterator[tuple[int, bytes, str]]:
        while (kind := self._to_start()) is not None:
            try:
                end = self._jpeg_end() if kind == "jpeg" else self._png_end()
            except _Broken:
                self._drop(1)
                continue
            except _TooLarge:
                self.oversized += 1
                self._drop(1)
                continue
            except EOFError:
                self.truncated = len(self._buffer)
                self._drop(len(self._buffer), skipped=False)
                return
            frame = (self._offset, bytes(self._buffer[:end]), kind)
            self._drop(end, skipped=False)
            yield frame
