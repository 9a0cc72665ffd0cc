"""Where frames may start in a stream: each JPEG start (FF D8 FF) and PNG signature, in order, each byte searched
once; for the frame splitter's sweep (edge_runtime.stream.sweep).

Entropy-coded data the sweep has scanned for markers holds no JPEG start (its FF D8 would have been the marker
that ended the scan): the JPEG search skips it. A PNG signature could be in there, but only matters when the
JPEG that holds it is no frame; the PNG search leaves those stretches owed, searched when a start before them
fails (`settle`), so the bulk of a Motion JPEG stream (its entropy-coded data, measured 0.28 ns a byte to
scan for markers) is not searched twice (0.40 ns a byte more for the PNG signature). The first PNG start
found in an owed stretch turns that off for the rest of the stream.
"""

from __future__ import annotations

from collections import deque

JPEG_START = b"\xff\xd8\xff"
PNG_START = b"\x89PNG\r\n\x1a\n"
MARKS = ((JPEG_START, "jpeg"), (PNG_START, "png"))
_FAR = 1 << 62


class StartSearch:
    """The next frame starts in a buffer whose first byte is stream offset `base`, found in stream order."""

    def __init__(self) -> None:
        self.at = [0, 0]  # for each mark, the first position not yet searched
        self.found: list[int | None] = [None, None]  # a start found and not yet taken, for each mark
        self.examined = 0
        self.skips: tuple[deque[tuple[int, int]], deque[tuple[int, int]]] = (deque(), deque())
        self.owed: deque[tuple[int, int]] = deque()  # stretches the PNG search skipped
        self.eager = False  # PNG signatures searched everywhere

    def skip(self, low: int, high: int) -> None:
        """Entropy-coded data from `low` to `high` was scanned for markers: no JPEG start is in there."""
        for k, top in ((0, high), (1, high - len(PNG_START) + 1)):  # a PNG signature may end past the data
            if k == 1 and self.eager:
                break
            bottom = max(low, self.at[k])
            if top > bottom:
                self.skips[k].append((bottom, top))

    def restart(self, position: int) -> None:
        """Nothing before `position` matters any more (a frame ended there)."""
        self.at = [max(at, position) for at in self.at]
        self.found = [None if at is None or at < position else at for at in self.found]
        while self.owed and self.owed[0][0] < position:
            high = self.owed.popleft()[1]
            if high > position:
                self.owed.appendleft((position, high))
                break

    def next(self, buffer: bytearray, base: int, upto: int) -> tuple[int, str] | None:
        """The first start at a position before `upto`, or None."""
        end = base + len(buffer)
        for k in range(len(MARKS)):
            if self.found[k] is None:
                self.found[k] = self._find(k, buffer, base, upto, end)
        positions = [(at, k) for k, at in enumerate(self.found) if at is not None]
        if not positions:
            return None
        at, k = min(positions)
        self.found[k], self.at[k] = None, at + 1
        return at, MARKS[k][1]

    def _find(self, k: int, buffer: bytearray, base: int, upto: int, end: int) -> int | None:
        mark, position = MARKS[k][0], self.at[k]
        while position < upto and position + len(mark) <= end:
            low, high = self._skip_after(k, position)
            if low <= position:
                if k == 1:
                    self.owed.append((position, high))
                position = high
                continue
            stop = min(upto, low, end - len(mark) + 1)  # positions before `stop` are searched
            i = buffer.find(mark, position - base, stop - base + len(mark) - 1)
            if i >= 0:
                self.examined += i + base + len(mark) - position
                self.at[k] = i + base
                return i + base
            self.examined += stop - position
            position = stop
        self.at[k] = position
        return None

    def _skip_after(self, k: int, position: int) -> tuple[int, int]:
        skips = self.skips[k]
        while skips and skips[0][1] <= position:
            skips.popleft()
        return skips[0] if skips and not (k == 1 and self.eager) else (_FAR, _FAR)

    def settle(self, buffer: bytearray, base: int, before: int) -> list[int]:
        """The PNG starts before `before` in the owed stretches (a start before them failed), in order."""
        found: list[int] = []
        while self.owed and self.owed[0][0] < before:
            low, high = self.owed.popleft()
            stop, position = min(high, before), low
            while (i := buffer.find(PNG_START, position - base, stop - base + len(PNG_START) - 1)) >= 0:
                found.append(i + base)
                position = i + base + 1
            self.examined += stop - low
            if high > before:
                self.owed.appendleft((before, high))
                break
        if found:
            self.eager = True
            self.skips[1].clear()
        return found
