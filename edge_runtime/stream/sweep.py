"""The frame splitter's sweep: every frame start of a stream walked at once, in stream order, in linear time.

A walk goes from position to position: a JPEG marker (NODE), a PNG chunk (CHUNK), the entry into
entropy-coded data after SOS (ENTRY), the marker that ends such data (POOL), the end of a PNG (END). What
follows a position depends only on the bytes there, so walks that reach the same position merge into one
chain and go on as one; every walk inside entropy-coded data waits in one shared scan (the pool), since the
next marker after any point of the data is the same. Positions are taken in stream order from a heap, so
each is stepped once however many starts lead to it; a run of fill bytes and RSTn is one step; the bytes
are searched once for frame starts (edge_runtime.stream.starts) and scanned once for markers. The earliest
open start (the front) bounds the sweep: a byte past its cap drops it as oversized. At most MAX_OPEN starts
are open at once (a camera's stream has one, a frame with an EXIF thumbnail two); more are false starts.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .starts import PNG_START, StartSearch

MAX_OPEN = 1 << 16
ENTRY, POOL, NODE, CHUNK, END = range(5)  # taken in this order at one position
_LOOKS = {ENTRY: -1, POOL: 1, NODE: 1, CHUNK: 7, END: 0}  # the last byte an event looks at, from its position
_RUN_TOKENS = frozenset({0xFF, 0x01, *range(0xD0, 0xD8)})  # fill bytes, TEM and RSTn: no length
_NO_LENGTH = _RUN_TOKENS | {0xD8, 0xD9}
_STUFFING = frozenset({0x00, *range(0xD0, 0xD8)})  # after FF in entropy-coded data: a stuffed FF, a restart
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_RUN = re.compile(rb"(?:\xff(?=\xff)|\xff[\x01\xd0-\xd7])+")
PENDING, DONE, CUT, DEAD = range(4)  # CUT: its walk needs bytes past the end of the stream
_FAR = 1 << 62
_AHEAD = 512  # the start search runs this far past the next position (fewer, longer searches)


class _Start:
    __slots__ = ("at", "chain", "end", "kind", "state")

    def __init__(self, at: int, kind: str) -> None:
        self.at, self.kind, self.state, self.end = at, kind, PENDING, 0
        self.chain = _Chain(self)


class _Chain:
    """The starts whose walks have reached the same position; `live` of them still pending."""

    __slots__ = ("live", "starts")

    def __init__(self, start: _Start) -> None:
        self.starts, self.live = [start], 1


def _merge(a: _Chain, b: _Chain) -> _Chain:
    """One chain of two (the smaller moves), its list kept near its live starts."""
    if a is b:
        return a
    if len(a.starts) < len(b.starts):
        a, b = b, a
    for start in b.starts:
        start.chain = a
    a.starts += b.starts
    a.live += b.live
    b.starts, b.live = [], 0
    if len(a.starts) > 2 * a.live + 32:
        a.starts = [start for start in a.starts if start.state == PENDING]
    return a


class Sweep:
    """Frames of a stream as (offset, end, kind, bytes); `counts` (a StreamCounts) fills as it goes."""

    def __init__(self, read: Callable[[int], bytes], cap: int, counts: Any, read_size: int) -> None:
        self._read, self.cap, self.counts, self._read_size = read, cap, counts, read_size
        self._examined = 0  # bytes looked at by the marker scan and the steps, and copied into frames
        self.open = self.peak_open = 0  # starts pending, or finished and waiting for the front
        self._buffer, self._base, self._eof = bytearray(), 0, False
        self._search = StartSearch()
        self._starts: deque[_Start] = deque()
        self._dead = self._pending = self._searched = 0
        self._events: list[tuple[int, int]] = []
        self._waiting: dict[tuple[int, int], _Chain] = {}
        self._pool: _Chain | None = None
        self._pool_low = self._pool_scan = 0
        self._run = (0, 0)  # the last run of fill bytes and RSTn walked: a node inside it goes to its end

    @property
    def examined(self) -> int:
        return self._examined + self._search.examined

    def frames(self) -> Iterator[tuple[int, int, str, bytes]]:
        while True:
            front = self._front()
            owed = self._search.owed
            if owed and owed[0][0] < (front.at if front is not None else _FAR):  # a start before them failed
                before = front.at if front is not None else _FAR
                for at in reversed(self._search.settle(self._buffer, self._base, before)):
                    self._open(at, "png", late=True)
            elif front is not None and front.state == DONE:
                yield self._emit(front)
            elif (front is not None and front.state == CUT) or not self._step():
                break  # the first start left is cut short by the end of the stream: it ends the split
        self._close()

    # -- the buffer

    def _end(self) -> int:
        return self._base + len(self._buffer)

    def _drop(self, upto: int, skipped: bool = True) -> None:
        if upto > self._base:
            del self._buffer[: upto - self._base]
            self.counts.skipped_bytes += (upto - self._base) if skipped else 0
            self._base = upto

    def _more(self) -> bool:
        """One more read (after dropping what no start needs); False at the end of the stream."""
        if self._eof:
            return False
        keep = min(self._search.at)
        front, owed = self._front(), self._search.owed
        self._drop(min(keep, front.at if front is not None else keep, owed[0][0] if owed else keep))
        chunk = self._read(self._read_size)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        self.counts.bytes_read += len(chunk)
        return True

    def _close(self) -> None:
        """At the end of the stream: a start still open is a frame cut short."""
        front = self._front()
        if front is not None:
            self.counts.truncated = self._end() - front.at
            self._drop(front.at)
            self._drop(self._end(), skipped=False)
        self._drop(self._end())

    # -- starts

    def _front(self) -> _Start | None:
        while self._starts and self._starts[0].state == DEAD:
            self._starts.popleft()
            self._dead -= 1
        return self._starts[0] if self._starts else None

    def _open_starts(self, upto: int) -> None:
        """Open each frame start before `upto`, in stream order. While the pool scans entropy-coded data the search
        waits at its beginning: no JPEG start is in there, and the PNG search goes over it when the pool leaves
        (a PNG start found then walks behind the sweep, which only PNG walks share)."""
        if self._pool is not None and self._pool.live:
            upto = min(upto, self._pool_low)
        if upto <= self._searched:
            return
        while (found := self._search.next(self._buffer, self._base, upto)) is not None:
            self._open(*found)
        self._searched = upto

    def _open(self, at: int, kind: str, late: bool = False) -> None:
        """Follow a start from here; `late`: one before every open start (found in an owed stretch)."""
        if self.open >= MAX_OPEN or self._broken_at_once(at, kind):
            self.counts.false_starts += 1
            return
        start = _Start(at, kind)
        self._starts.appendleft(start) if late else self._starts.append(start)
        self.open, self._pending = self.open + 1, self._pending + 1
        self.peak_open = max(self.peak_open, self.open)
        self._arrive(start.chain, *((at + 2, NODE) if kind == "jpeg" else (at + len(PNG_START), CHUNK)))

    def _broken_at_once(self, at: int, kind: str) -> bool:
        """A start whose first marker is another SOI, or whose first chunk is not one (FF D8 FF or PNG signatures
        repeated): no walk to follow."""
        i, buffer = at - self._base, self._buffer
        self._examined += 1
        if kind == "jpeg":
            return self.cap > 3 and i + 3 < len(buffer) and buffer[i + 3] == 0xD8
        if self.cap <= 15 or i + 16 > len(buffer):
            return False
        return int.from_bytes(buffer[i + 8 : i + 12], "big") > self.cap or not bytes(buffer[i + 12 : i + 16]).isalpha()

    def _kill(self, start: _Start, in_queue: bool = True) -> None:
        if start.state == PENDING:
            self._pending -= 1
            start.chain.live -= 1
        if start.state != DEAD:
            self.open -= 1
        start.state = DEAD
        if in_queue:
            self._dead += 1
            if self._dead > 64 and 2 * self._dead > len(self._starts):
                self._starts = deque(s for s in self._starts if s.state != DEAD)
                self._dead = 0
        if not self._pending:
            self._kill_waiting()

    def _beyond(self, index: int) -> bool:
        """Whether looking at byte `index` passes the front's cap: if so the front is dropped as oversized."""
        front = self._front()
        if front is None or index < front.at + self.cap:
            return False
        self.counts.oversized += 1
        self._kill(front)
        return True

    def _emit(self, front: _Start) -> tuple[int, int, str, bytes]:
        """The front's complete frame; the starts inside it are not frames of their own."""
        self._starts.popleft()
        self.open -= 1
        while self._starts and self._starts[0].at < front.end:
            inner = self._starts.popleft()
            self._dead -= inner.state == DEAD
            self._kill(inner, in_queue=False)
        with memoryview(self._buffer) as view:
            data = bytes(view[front.at - self._base : front.end - self._base])
        self._examined += len(data)
        self._drop(front.at)
        self._drop(front.end, skipped=False)
        self._search.restart(front.end)
        return front.at, front.end, front.kind, data

    # -- the walk

    def _step(self) -> bool:
        """Take things in stream order while the front stays open; False at the end of the stream."""
        events, waiting = self._events, self._waiting
        while True:
            while events and not getattr(waiting.get(events[0]), "live", 0):
                waiting.pop(heapq.heappop(events), None)
            front, end = self._front(), self._base + len(self._buffer)
            horizon = events[0][0] if events else (front.at + self.cap if front is not None else _FAR)
            if min(end, horizon + 1) > self._searched:  # starts up to here must be open: search ahead a bit
                self._open_starts(min(end, horizon + 1 + _AHEAD))
                front = self._front()
            if front is None:
                return bool(self._search.owed) or self._more()  # owed stretches are settled first
            limit = front.at + self.cap
            top = events[0] if events else None
            horizon = top[0] if top is not None else limit
            if self._pool is not None and self._pool.live and not self._pool_waits(min(horizon, limit - 2), horizon):
                return True
            if top is None:
                return self._beyond(limit)
            looks = self._looks(*top)
            if looks >= limit:
                return self._beyond(looks)
            if looks >= end and self._more():
                return True
            heapq.heappop(events)
            chain = waiting.pop(top)
            self._take(*top, chain) if looks < self._base + len(self._buffer) else self._cut(chain)
            if front.state != PENDING:
                return True

    def _pool_waits(self, stop: int, horizon: int) -> bool:
        """Scan the pool up to `stop`: True when it has no marker up to `horizon` (the next event may be taken),
        False when it found one, read more, was cut by the end of the stream or met the front's cap."""
        found = self._scan_pool(stop)
        if found is None and not self._more():
            self._cut(self._pool)
        if found is False and stop < horizon:  # no marker before the front's cap
            self._beyond(stop + 2)
        return found is False and stop >= horizon

    def _looks(self, position: int, order: int) -> int:
        """The last byte the event at `position` looks at (a JPEG marker with a length: its length too)."""
        if order != NODE or position + 1 >= self._end():
            return position + _LOOKS[order]
        i = position - self._base
        return position + 3 if self._buffer[i] == 0xFF and self._buffer[i + 1] not in _NO_LENGTH else position + 1

    def _scan_pool(self, stop: int) -> bool | None:
        """Scan the entropy-coded data for its next marker up to `stop`: True when found, False when there is
        none up to `stop`, None when more must be read to know."""
        begin, high = self._pool_scan, min(stop + 2, self._end())
        if high - 1 > begin and self._pool is not None:
            at = self._next_marker(begin - self._base, high - self._base)
            if at is not None:
                self._examined += at + 2 - begin
                self._arrive(self._pool, at, POOL)
                self._close_pool(at)
                return True
            self._examined += high - begin
            self._pool_scan = high - 1
        return False if self._pool_scan > stop else None

    def _next_marker(self, i: int, high: int) -> int | None:
        """The first FF at or after buffer index `i` followed (before `high`) by neither 00 nor RSTn."""
        buffer, begin = self._buffer, i
        for stuffed in range(1 << 62):  # FFs by find (a JPEG's data has one in hundreds of bytes)
            i = buffer.find(b"\xff", i, high - 1)
            if i < 0:
                return None
            if buffer[i + 1] not in _STUFFING:
                return i + self._base
            i += 2
            if stuffed > 64 and i - begin < 16 * stuffed:  # a flood of stuffed FFs: the regular expression
                break
        found = _MARKER.search(buffer, i, high)
        return found.start() + self._base if found is not None else None

    def _close_pool(self, scanned: int) -> None:
        """The pool leaves: what it scanned is searched for PNG starts only."""
        self._search.skip(self._pool_low, scanned)
        self._pool = None

    def _arrive(self, chain: _Chain, position: int, order: int) -> None:
        if not chain.live:
            return
        key = (position, order)
        there = self._waiting.get(key)
        if there is None:
            self._waiting[key] = chain
            heapq.heappush(self._events, key)
        else:
            self._waiting[key] = _merge(there, chain)

    def _take(self, position: int, order: int, chain: _Chain) -> None:
        if order == ENTRY:
            waiting = self._waiting.get((position, POOL))
            if waiting is not None:  # the pool's marker is right here
                self._waiting[(position, POOL)] = _merge(waiting, chain)
            elif self._pool is not None and self._pool.live:  # scanned up to here already
                self._pool = _merge(self._pool, chain)
            else:
                if self._pool is not None:
                    self._close_pool(self._pool_scan)
                self._pool, self._pool_low, self._pool_scan = chain, position, position
        elif order == POOL:
            self._arrive(chain, position, NODE)
        elif order == END:
            self._finish(chain, position + 1)
        elif order == CHUNK:
            self._chunk(position, chain)
        else:
            self._marker(position, chain)

    def _marker(self, at: int, chain: _Chain) -> None:
        """One JPEG marker: a run of fill bytes and RSTn skipped as one, EOI ends, a segment is skipped by its
        length (SOS: into entropy-coded data), anything else breaks the walk."""
        buffer, i = self._buffer, at - self._base
        low, high = self._run
        if low < at < high and buffer[i] == 0xFF:
            self._arrive(chain, high, NODE)
            return
        self._examined += 2
        marker = buffer[i + 1]
        if buffer[i] != 0xFF or marker == 0xD8:
            self._broken(chain)
        elif marker in _RUN_TOKENS:
            front = self._front()
            stop = min(self._end(), front.at + self.cap if front is not None else _FAR)
            run = _RUN.match(buffer, i, stop - self._base)
            end = run.end() + self._base if run is not None else at + 1
            self._examined += end - at
            self._run = (at, end)
            self._arrive(chain, end, NODE)
        elif marker == 0xD9:
            self._finish(chain, at + 2)
        else:
            self._examined += 2
            length = buffer[i + 2] << 8 | buffer[i + 3]
            if length < 2:
                self._broken(chain)
            else:
                self._arrive(chain, at + 2 + length, ENTRY if marker == 0xDA else NODE)

    def _chunk(self, at: int, chain: _Chain) -> None:
        """One PNG chunk: its length and type (letters), skipped to the next; IEND ends."""
        i = at - self._base
        length, kind = int.from_bytes(self._buffer[i : i + 4], "big"), bytes(self._buffer[i + 4 : i + 8])
        self._examined += 8
        if length > self.cap or not kind.isalpha():
            self._broken(chain)
        elif kind == b"IEND":
            self._arrive(chain, at + 12 + length - 1, END)
        else:
            self._arrive(chain, at + 12 + length, CHUNK)

    def _finish(self, chain: _Chain, end: int) -> None:
        for start in chain.starts:
            if start.state == PENDING:
                start.state, start.end = DONE, end
                self._pending -= 1
        chain.starts, chain.live = [], 0
        if not self._pending:
            self._kill_waiting()

    def _cut(self, chain: _Chain | None) -> None:
        """The walk needs bytes past the end of the stream: its starts are cut short."""
        if chain is None:
            return
        for start in chain.starts:
            if start.state == PENDING:
                start.state = CUT
                self._pending -= 1
        chain.starts, chain.live = [], 0
        if chain is self._pool:
            self._close_pool(self._pool_scan)
        if not self._pending:
            self._kill_waiting()

    def _broken(self, chain: _Chain) -> None:
        for start in [s for s in chain.starts if s.state == PENDING]:
            self.counts.false_starts += 1
            self._kill(start)
        chain.starts, chain.live = [], 0

    def _kill_waiting(self) -> None:
        """Nothing is walking any more: what waits is dead."""
        self._events.clear()
        self._waiting.clear()
        if self._pool is not None:
            self._close_pool(self._pool_scan)
        self._run = (0, 0)
