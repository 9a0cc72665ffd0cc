"""Memory within the documented 1 GB (issue #28): images that cost more to decode than their pixels, and the
image statistics of a training; each measured in a real process (its peak resident memory, from the kernel).

The decode budget counts what the decoder will hold (edge_runtime.decode_cost); the table below checks the
count against the peak a real process reaches, for every mode and format that costs more than its pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bad_files import progressive_jpeg
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
MAX_RSS_MB = 1024
# Runs a command (stdin passed on), then writes its peak resident memory (the kernel's count for that child).
MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


@dataclass
class Run:
    code: int
    out: list[str]
    err: list[str]
    peak_mb: float


def measured(argv: list[str], stdin: Path | None = None, timeout: float = 120) -> Run:
    """A real process: exit code, output lines and peak memory; it must never outlive `timeout`."""
    import tempfile

    with tempfile.NamedTemporaryFile("r") as peak, open(stdin or os.devnull, "rb") as given:
        try:
            done = subprocess.run(
                [sys.executable, "-c", MEASURE, peak.name, *argv],
                stdin=given, capture_output=True, cwd=ROOT, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"{argv} hung for {timeout} s")
        peak_kb = int(peak.read() or 0)
    lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    out = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    return Run(done.returncode, out, lines, peak_kb / 1024)


def predict(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_runtime", "predict", str(SHIPPED), *args]


# --- a JPEG whose coefficients cost more than its pixels --------------------------------------------


@pytest.fixture(scope="module")
def hostile_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A progressive CMYK JPEG of 13000x13000: 1.3 MB on disk; 1,360 MB peak before the budget counted it."""
    path = tmp_path_factory.mktemp("jpeg") / "hostile.jpg"
    progressive_jpeg(path, 13000, 13000, components=4)
    return path


@pytest.fixture(scope="module")
def progressive_photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shipped bag photo at 2000x2000 as a progressive JPEG (4:4:4, 24 MB of coefficients), and as a baseline."""
    folder = tmp_path_factory.mktemp("photo")
    bag = Image.open(SHIPPED / "samples" / "bag.jpg").convert("RGB").resize((2000, 2000), Image.BILINEAR)
    bag.save(folder / "progressive.jpg", quality=90, progressive=True, subsampling=0)
    bag.save(folder / "baseline.jpg", quality=90)
    return folder / "progressive.jpg", folder / "baseline.jpg"


TOO_COSTLY = "CMYK progressive JPEG needs 1,310 MB to decode, over the 256 MB limit for one image"

JPEG_CASES: list[tuple[str, Callable[[Path, tuple[Path, Path]], tuple[list[str], Path | None]], str | None]] = [
    ("13000x13000 progressive CMYK, a file", lambda hostile, _: (predict(str(hostile)), None), TOO_COSTLY),
    ("13000x13000 progressive CMYK, a stream frame", lambda hostile, _: (predict("-"), hostile), TOO_COSTLY),
    ("2000x2000 progressive RGB, a file", lambda _, photo: (predict(str(photo[0])), None), None),
    ("2000x2000 progressive RGB, a stream frame", lambda _, photo: (predict("-"), photo[0]), None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "setup", "message"), JPEG_CASES, ids=[c[0] for c in JPEG_CASES])
def test_a_jpeg_is_decoded_within_the_budget_or_refused_in_one_line(
    hostile_jpeg: Path, progressive_photo: tuple[Path, Path], case: str, setup: Callable, message: str | None
) -> None:
    argv, stdin = setup(hostile_jpeg, progressive_photo)
    done = measured(argv, stdin)
    assert done.peak_mb < MAX_RSS_MB and "Traceback" not in "\n".join(done.err), (done.peak_mb, done.err)
    shown = [line for line in done.out + done.err if "error" in line]
    if message is None:
        baseline = measured(predict(str(progressive_photo[1])))
        assert done.code == 0 and not shown, done.err
        label = baseline.out[1].split()[1]  # the table's first row: image, label, index, score
        assert label == "Bag" and label in (done.out[1] if stdin is None else done.out[0]), done.out
    else:
        assert len(shown) == 1 and message in shown[0], done.out + done.err
        assert done.code == 1 if stdin is None else done.code in (0, 1)  # a stream goes on past a bad frame
    print(f"{case}: peak {done.peak_mb:.0f} MB")


# --- the count against a real process's peak ---------------------------------------------------------

# In a fresh process: what the budget counts for one image, then the peak its decode and conversion reach.
COUNT_AND_MEASURE = r"""
import json, sys
from pathlib import Path
from PIL import Image
from edge_runtime import images
from edge_runtime.decode_cost import decode_cost
from edge_runtime.folder.records import InputSpec

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

path, found = Path(sys.argv[1]), []
for side, channels in ((28, 1), (96, 3)):
    spec = InputSpec(side, side, channels)
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft(images.draft_mode(spec), (side, side))
        counted = decode_cost(image, images.draft_mode(spec)).total
    open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from what is resident now
    before = status("VmRSS:")
    images.load_pixels(path, spec)
    found.append([counted, status("VmHWM:") - before])
print(json.dumps(found))
"""


def _pattern(mode: str, size: tuple[int, int] = (3000, 2000)) -> Image.Image:
    """A photo-like image in `mode`: smooth colour with some noise (it does not compress to nothing)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size[1] // 20, size[0] // 20, 4), dtype=np.uint8)
    rgba = Image.fromarray(small, "RGBA").resize(size, Image.BILINEAR)
    if mode == "I;16":
        return Image.fromarray(np.asarray(rgba.convert("L")).astype(np.uint16) * 257)
    if mode == "F":
        return Image.fromarray(np.asarray(rgba.convert("L")).astype(np.float32) / 255)
    return rgba.convert(mode)


MODES: list[tuple[str, str, dict]] = [
    ("RGB", "png", {}),
    ("RGBA", "png", {}),
    ("LA", "png", {}),
    ("P", "png", {"transparency": 0}),
    ("I;16", "png", {}),
    ("F", "tiff", {}),
    ("RGB", "tiff", {"compression": "tiff_deflate"}),
    ("CMYK", "tiff", {}),
    ("RGBA", "webp", {"quality": 80}),
    ("RGB", "bmp", {}),
    ("P", "gif", {}),
    ("CMYK", "jpeg", {"progressive": True}),
    ("RGB", "jpeg", {"progressive": True, "subsampling": 0}),
    ("L", "jpeg", {"progressive": True}),
    ("RGB", "jpeg", {}),
    ("RGB", "jpeg", {"exif": "rotated"}),  # exif_transpose copies it
    ("RGB", "png", {"exif": "rotated"}),
    ("RGB", "tiff", {"exif": "rotated"}),
]


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize(("mode", "kind", "options"), MODES, ids=[f"{m} {k} {o}" for m, k, o in MODES])
def test_the_decode_budget_counts_at_least_what_a_decode_holds(
    tmp_path: Path, mode: str, kind: str, options: dict
) -> None:
    """6 megapixels of each mode and format: the count is never below the peak a real process reaches."""
    path = tmp_path / f"image.{kind}"
    image = _pattern(mode)
    if options.get("exif") == "rotated":
        exif = image.getexif()
        exif[0x0112] = 6  # rotated 90 degrees
        options = {**options, "exif": exif}
    image.save(path, **options)
    done = subprocess.run(
        [sys.executable, "-c", COUNT_AND_MEASURE, str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for counted, peak in json.loads(done.stdout):
        assert peak <= counted, f"{mode} {kind}: measured {peak / 2**20:.1f} MB, counted {counted / 2**20:.1f} MB"


# --- the image statistics of a training, in chunks ------------------------------------------------


def _old_image_stats(images: np.ndarray, invert: bool, native_channels: int) -> dict:
    """The computation before issue #28 (every sampled image at once, float32 and an int16 copy): the reference."""
    chosen = np.sort(np.random.default_rng(0).choice(len(images), size=min(2000, len(images)), replace=False))
    pixels = np.asarray(images[chosen]).astype(np.float32)
    if invert:
        pixels = 255.0 - pixels
    means = pixels.reshape(len(chosen), -1).mean(axis=1)
    colour = 0.0
    if native_channels != 1:
        values = pixels.astype(np.int16)
        colour = float((values.max(axis=-1) - values.min(axis=-1)).mean()) if pixels.shape[-1] == 3 else None
    return {"mean": float(means.mean()), "std": float(means.std()), "colour": colour}


def _stats(images: object, invert: bool, channels: int) -> dict:
    from edge_runtime.folder.reader import InputSpec
    from pipeline.data.dataset import Dataset, Split
    from pipeline.data.named import NativeFormat
    from pipeline.data.statistics import image_stats

    train = Split(images, np.zeros(len(images), np.int64))
    dataset = Dataset("x", ["a"], train, train, train, "test")
    shape = images.shape
    spec = InputSpec(shape[1], shape[2], shape[3], invert=invert)
    return image_stats(dataset, spec, NativeFormat(shape[1] * 2, shape[2] * 2, channels))


def _photos(count: int, side: int = 96, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(count)
    base = rng.integers(0, 256, (count, 1, 1, channels), dtype=np.uint8)
    return np.clip(base + rng.integers(-40, 40, (count, side, side, channels)), 0, 255).astype(np.uint8)


def _on_disk(images: np.ndarray, folder: Path) -> object:
    from pipeline.data.streamed import DiskImages

    path = folder / f"rows-{len(images)}.u8"
    path.write_bytes(images.tobytes())
    return DiskImages(path, images.shape[1:])


@pytest.mark.parametrize(
    ("images", "invert", "channels"),
    [(_photos(300), False, 3), (_photos(2500, 32), True, 3), (_photos(300, 28, 1), True, 1), (_photos(50), False, 1)],
    ids=["colour", "colour-inverted-2500", "gray-inverted", "colour-pixels-of-a-gray-dataset"],
)
def test_image_statistics_in_chunks_equal_the_old_computation(
    tmp_path: Path, images: np.ndarray, invert: bool, channels: int
) -> None:
    old = _old_image_stats(images, invert, channels)
    for source in (images, _on_disk(images, tmp_path)):
        new = _stats(source, invert, channels)
        assert new["brightness"]["mean"] == pytest.approx(old["mean"], abs=0.0051)
        assert new["brightness"]["std"] == pytest.approx(old["std"], abs=0.0051)
        assert (new["colour"] is None) == (old["colour"] is None)
        if old["colour"] is not None:
            assert new["colour"] == pytest.approx(old["colour"], abs=0.0051)


def test_image_statistics_memory_does_not_grow_with_the_images(tmp_path: Path) -> None:
    """800 images of 160 px (61 MB on disk) against 200: the peak stays a chunk's (the old one held all, 4x)."""
    peaks = {}
    for count in (200, 800):
        images = _on_disk(_photos(count, 160), tmp_path)
        tracemalloc.start()
        _stats(images, False, 3)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    chunk = 32 * 160 * 160 * 3
    assert peaks[800] < 1.1 * peaks[200] + (1 << 20) and peaks[800] < 4 * chunk, peaks
