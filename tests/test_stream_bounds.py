"""Camera streams stay bounded on hostile input (issue #28): the frame splitter is linear whatever the markers.

Each hostile pattern of tests/hostile_streams.py is split looking at a few bytes per byte read, as many per
byte on 4N bytes as on N, with exactly the frames and counts the one-start-at-a-time splitter of
tests/reference_splitter.py finds; real streams (Fashion-MNIST frames with EXIF thumbnails, progressive JPEGs,
PNGs, garbage, cuts and flipped bytes) agree with it too. Through the real CLI a hostile stream ends in a time
bounded by its size, in one line, under 1 GB. `--watch` forgets deleted files and stops when its folder goes.
"""

from __future__ import annotations

import io
import os
import random
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.stream.frames import FrameSplitter
from edge_runtime.stream.sweep import MAX_OPEN
from edge_runtime.stream.watch import DirectoryWatch
from tests.conftest import ROOT
from tests.hostile_streams import PATTERNS, nested_starts, png_signatures, soi_run, starts_into_one_scan
from tests.reference_splitter import ReferenceSplitter

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
SIZE = 64 << 10
# The child reports its own peak memory as it exits (VmHWM, KB), on its last stderr line.
MEASURED = (
    # VmHWM, not getrusage: Linux carries ru_maxrss across fork + exec, so a child of a 2 GB pytest read 2 GB
    "import atexit, re, runpy, sys\n"
    "hwm = lambda: re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "atexit.register(lambda: print('peak-kb', hwm(), file=sys.stderr))\n"
    "sys.argv = ['edge-runtime', *sys.argv[1:]]\n"
    "runpy.run_module('edge_runtime', run_name='__main__')\n"
)


def _split(data: bytes, cap: int, read_size: int = 1 << 16) -> tuple[FrameSplitter, list]:
    source = io.BytesIO(data)
    splitter = FrameSplitter(lambda size: source.read(min(size, read_size)), cap)
    return splitter, list(splitter)


def _reference(data: bytes, cap: int, read_size: int = 1 << 16) -> tuple[ReferenceSplitter, list]:
    source = io.BytesIO(data)
    splitter = ReferenceSplitter(lambda size: source.read(min(size, read_size)), cap)
    return splitter, list(splitter)


def _agree(data: bytes, cap: int, read_size: int) -> None:
    splitter, frames = _split(data, cap, read_size)
    reference, expected = _reference(data, cap, read_size)
    assert [(f.offset, f.data, f.kind) for f in frames] == expected
    counts = splitter.counts
    assert (counts.skipped_bytes, counts.oversized, counts.truncated) == (
        reference.skipped,
        reference.oversized,
        reference.truncated,
    )
    assert counts.bytes_read == len(data) == counts.skipped_bytes + counts.truncated + sum(len(f.data) for f in frames)


@pytest.mark.parametrize("name", PATTERNS)
def test_hostile_patterns_are_split_in_linear_time(name: str) -> None:
    """Bytes looked at per byte read stay under 6, and as many on 4N bytes as on N (before: 8-12x the time)."""
    looked = []
    for size in (SIZE, 4 * SIZE):
        data, cap = PATTERNS[name](size)
        splitter = _split(data, cap)[0]
        assert splitter.examined <= 6 * len(data), (size, splitter.examined / len(data))
        assert splitter.peak_open <= MAX_OPEN
        assert splitter.counts.bytes_read == len(data)
        looked.append(splitter.examined)
    assert looked[1] <= 4.5 * looked[0], looked


@pytest.mark.parametrize("name", PATTERNS)
def test_hostile_patterns_give_what_one_start_at_a_time_gives(name: str) -> None:
    data, cap = PATTERNS[name](20_000)
    for read_size in (7, 4096, 1 << 16):
        _agree(data, cap, read_size)


def _encoded(pixels: np.ndarray, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, kind, **options)
    return buffer.getvalue()


def _pieces(images: np.ndarray) -> list[bytes]:
    """Real frames: baseline, progressive, with an EXIF thumbnail (a JPEG inside APP1), with restart markers, PNG."""
    colour = np.stack([images[0][:, :, 0]] * 3, axis=-1)
    thumbnail = _encoded(np.asarray(Image.fromarray(colour).resize((8, 8))), "JPEG")
    return [
        _encoded(images[1][:, :, 0], "JPEG", quality=95),
        _encoded(colour, "JPEG", quality=90, progressive=True),
        _encoded(colour, "JPEG", exif=b"Exif\x00\x00" + thumbnail),
        _encoded(np.asarray(Image.fromarray(colour).resize((64, 64))), "JPEG", quality=100),
        _encoded(images[2][:, :, 0], "PNG"),
        _encoded(colour, "PNG"),
    ]


def _stream(rng: random.Random, pieces: list[bytes]) -> bytes:
    parts = []
    for _ in range(rng.randrange(1, 20)):
        piece, roll = rng.choice(pieces), rng.random()
        if roll < 0.2:
            piece = piece[: rng.randrange(1, len(piece))]  # cut short
        elif roll < 0.3:
            flipped = bytearray(piece)
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            piece = bytes(flipped)
        elif roll < 0.4:
            piece = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 100)))
        elif roll < 0.5:
            piece = bytes(rng.choice(b"\xff\xd8\xd9\x00\xda\xe1\xd0\x89PNG") for _ in range(rng.randrange(1, 60)))
        elif roll < 0.6:
            piece = rng.choice(list(PATTERNS.values()))(rng.randrange(50, 3000))[0]
        parts.append(piece)
    return b"".join(parts)


def test_real_streams_give_what_one_start_at_a_time_gives(fashion_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    rng, pieces = random.Random(28), _pieces(fashion_arrays[0])
    for _ in range(150):
        _agree(_stream(rng, pieces), rng.choice([300, 1500, 5000, 1 << 20]), rng.choice([1, 100, 4096, 1 << 16]))


def test_a_long_camera_stream_is_split_whole_looking_at_each_byte_at_most_three_times(
    fashion_arrays: tuple[np.ndarray, np.ndarray],
) -> None:
    images = fashion_arrays[0]
    frames = [_encoded(images[i % 1000][:, :, 0], "PNG" if i % 10 == 9 else "JPEG", quality=95) for i in range(5000)]
    data = b"".join(frames)
    splitter, found = _split(data, 1 << 20, 1 << 16)
    assert [f.data for f in found] == frames and splitter.counts.skipped_bytes == 0
    assert [f.kind for f in found].count("png") == 500
    assert splitter.examined <= 3 * len(data), splitter.examined / len(data)  # a PNG's data is searched for starts
    assert splitter.peak_open <= (1 << 16) // min(map(len, frames)) + 1  # the frames of one read, at most


def _cli(data: bytes, *options: str) -> tuple[subprocess.CompletedProcess, int]:
    """`python -m edge_runtime predict SHIPPED - ...` on `data`, within 60 s plus 60 s a MB; and its peak KB."""
    done = subprocess.run([sys.executable, "-c", MEASURED, "predict", str(SHIPPED), "-", *options], input=data,
                          capture_output=True, timeout=60 + 60 * len(data) / 1e6, check=False)  # fmt: skip
    err = done.stderr.decode().splitlines()
    assert err and err[-1].startswith("peak-kb "), err
    done.stderr = "\n".join(line for line in err[:-1] if not line.startswith("edge-runtime: using "))  # the variant
    return done, int(err[-1].split()[1])


HOSTILE_CLI = [("FF D8 FF repeated", soi_run, 16 << 10), ("PNG signatures", png_signatures, 16 << 10),
               ("nested starts", nested_starts, 256)]  # fmt: skip


@pytest.mark.parametrize(("case", "pattern", "cap_kb"), HOSTILE_CLI, ids=[c[0] for c in HOSTILE_CLI])
def test_hostile_streams_through_the_cli_end_in_one_line(case: str, pattern: object, cap_kb: int) -> None:
    data = pattern(1 << 20)[0]  # type: ignore[operator]
    counts = _split(data, cap_kb << 10)[0].counts
    done, peak_kb = _cli(data, "--max-frame-kb", str(cap_kb))
    assert done.returncode == 1 and not done.stdout, done.stderr
    assert done.stderr.count("\n") == 0 and f"no JPEG or PNG frames in the {len(data):,} byte(s)" in done.stderr
    assert f"{counts.false_starts:,} frame start(s) not followed by a frame" in done.stderr or not counts.false_starts
    assert f"{counts.oversized:,} over the {cap_kb:,} KB cap" in done.stderr or not counts.oversized
    assert peak_kb < 1 << 20


def test_a_frame_after_starts_that_never_end_is_classified() -> None:
    """10,000-ish JPEG starts whose SOS lengths land on one long entropy-coded block, then a real frame."""
    data = starts_into_one_scan(1 << 20)[0] + (SHIPPED / "samples" / "bag.jpg").read_bytes()
    oversized = _split(data, 256 << 10)[0].counts.oversized
    done, peak_kb = _cli(data, "--max-frame-kb", "256", "--jsonl")
    assert done.returncode == 0, done.stderr
    assert [line.count('"frame"') for line in done.stdout.decode().splitlines()] == [1]
    assert oversized > 500 and f"{oversized:,} frame(s) over the 256 KB cap were dropped" in done.stderr
    assert done.stderr.startswith("edge-runtime: 1 frame(s) in") and done.stderr.count("\n") == 1
    assert peak_kb < 1 << 20


def test_watch_forgets_files_that_are_gone(tmp_path: Path) -> None:
    """3,000 snapshots written and deleted: the watch remembers what is in the folder, not what ever was."""
    watch = DirectoryWatch(tmp_path, settle=0.0, poll=0.0)
    taken = iter(watch)
    for batch in range(30):
        for index in range(100):
            (tmp_path / f"{batch}-{index}.jpg").write_bytes(b"\xff\xd8 not decoded here")
        got = {next(taken) for _ in range(100)}
        assert len(got) == 100
        for path in got:
            path.unlink()
    (tmp_path / "last.jpg").write_bytes(b"x")
    assert next(taken).name == "last.jpg"
    assert watch.remembered == 1


def _line(stream: io.RawIOBase, timeout: float) -> str:
    """The next line of an unbuffered pipe, or "" after `timeout` seconds without one."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().decode() if ready else ""


def test_watch_stops_in_one_line_when_its_folder_goes(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    watcher = subprocess.Popen([sys.executable, "-m", "edge_runtime", "predict", str(SHIPPED), "--watch", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)  # fmt: skip
    try:
        began = time.monotonic()
        while "watching" not in (line := _line(watcher.stderr, 120)) and time.monotonic() - began < 120:
            assert line, "the watch did not start"
        shutil.rmtree(folder)
        began = time.monotonic()
        assert watcher.wait(timeout=30) == 1
        assert time.monotonic() - began < 30
        rest = watcher.stderr.read().decode().splitlines()
        assert len(rest) == 1 and "the folder cannot be listed any more (it is gone)" in rest[0], rest
    finally:
        if watcher.poll() is None:
            os.kill(watcher.pid, 9)
