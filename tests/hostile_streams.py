"""Hostile byte streams for the frame splitter (tests/test_stream_bounds.py, benchmarks/stream_bounds.py).

Each pattern takes a size in bytes and returns the stream and the frame cap to split it with: the cap is half
the stream, so a frame start that is never finished reaches its cap before the stream ends (a stream that ends
first stops the splitter, which a cost test must not let happen). Before issue #28 each was quadratic: every
apparent frame start walked on up to its cap again.
"""

from __future__ import annotations

from collections.abc import Callable

JPEG_START = b"\xff\xd8\xff"
PNG_START = b"\x89PNG\r\n\x1a\n"
SEGMENT = 65537  # an APP1 segment of the largest length: FF E1, length 0xFFFF (which counts its own two bytes)


def _fill(pattern: bytes, size: int) -> bytes:
    return (pattern * (size // len(pattern) + 1))[:size]


def soi_run(size: int) -> tuple[bytes, int]:
    """FF D8 FF repeated: every third byte an apparent frame start (issue #28: ~30 hours for 17 MB)."""
    return _fill(JPEG_START, size), size // 2


def png_signatures(size: int) -> tuple[bytes, int]:
    """The PNG signature repeated."""
    return _fill(PNG_START, size), size // 2


def starts_into_one_scan(size: int) -> tuple[bytes, int]:
    """Up to 10,000 JPEG starts whose SOS lengths all land on one long entropy-coded block of FF00 stuffing
    with no marker in it (issue #28: 3.2-3.7 s of CPU each)."""
    count = max(1, min(10_000, size // 1700))
    starts = b"".join(JPEG_START + b"\xda" + (6 * count - 6 * i - 4).to_bytes(2, "big") for i in range(count))
    return starts + _fill(b"\xff\x00", size - len(starts)), size // 2


def _segments(size: int, payload: Callable[[int], bytes]) -> bytes:
    """SOI, then APP1 segments of the largest length back to back, each payload made for its offset."""
    parts, offset = [b"\xff\xd8"], 2
    while offset < size:
        parts.append(b"\xff\xe1\xff\xff" + payload(offset + 4))
        offset += SEGMENT
    return b"".join(parts)[:size]


def nested_starts(size: int) -> tuple[bytes, int]:
    """One never-ending frame whose segments are full of frame starts, each one's first segment length landing
    on the outer frame's next marker: thousands of starts that all follow the outer frame's walk."""

    def payload(at: int) -> bytes:
        following, out = at + SEGMENT - 4, bytearray()
        while len(out) + 6 <= SEGMENT - 4:
            node = at + len(out) + 2
            out += JPEG_START + b"\xe1" + (following - node - 2).to_bytes(2, "big")
        return bytes(out.ljust(SEGMENT - 4, b"\x00"))

    return _segments(size, payload), size // 2


def sois_in_one_frame(size: int) -> tuple[bytes, int]:
    """Many SOIs inside one huge frame's segments (each broken at once, inside a frame still open)."""
    return _segments(size, lambda at: _fill(JPEG_START, SEGMENT - 4)), size // 2


def png_lengths_to_the_cap(size: int) -> tuple[bytes, int]:
    """PNG signatures every 24 bytes, each followed by a chunk whose length points just short of its cap."""
    cap = size // 2
    unit = PNG_START + max(cap - 40, 0).to_bytes(4, "big") + b"tEXt" + b"\x00" * 8
    return _fill(unit, size), cap


def fill_bytes(size: int) -> tuple[bytes, int]:
    """A frame start, then fill bytes (FF) for ever."""
    return JPEG_START + b"\xff" * (size - 3), size // 2


def restart_markers(size: int) -> tuple[bytes, int]:
    """A frame start, then restart markers (FF D0), which have no length, for ever."""
    return JPEG_START + _fill(b"\xd0\xff", size - 3), size // 2


def tiny_segments(size: int) -> tuple[bytes, int]:
    """A frame start, then comment segments of length 2 (the shortest a segment can be) for ever."""
    return JPEG_START + b"\xfe\x00\x02" + _fill(b"\xff\xfe\x00\x02", size - 6), size // 2


def overlapping_jumps(size: int) -> tuple[bytes, int]:
    """A frame start every 4 bytes, each one's first segment jumping 64 KB ahead: thousands open at once."""
    return _fill(JPEG_START + b"\xe1", size), size // 2


PATTERNS: dict[str, Callable[[int], tuple[bytes, int]]] = {
    "soi run": soi_run,
    "png signatures": png_signatures,
    "starts into one scan": starts_into_one_scan,
    "nested starts": nested_starts,
    "sois in one frame": sois_in_one_frame,
    "png lengths to the cap": png_lengths_to_the_cap,
    "fill bytes": fill_bytes,
    "restart markers": restart_markers,
    "tiny segments": tiny_segments,
    "overlapping jumps": overlapping_jumps,
}
