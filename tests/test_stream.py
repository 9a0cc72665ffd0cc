"""Camera streams: frames piped into a real `edge-runtime predict MODEL -`, and `--watch DIR`.

Producers are real: ffmpeg's test source as Motion JPEG (640x480), and streams assembled from Fashion-MNIST
test images with known labels, checked against `predict` on the same files. The model is the shipped folder.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime import Predictor
from edge_runtime.stream.frames import FrameSplitter
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
RUNTIME = [sys.executable, "-m", "edge_runtime"]
requires_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)"
)


def _encoded(pixels: np.ndarray, kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0]).save(buffer, "PNG" if kind == "png" else "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fashion_frames(
    tmp_path_factory: pytest.TempPathFactory, fashion_arrays: tuple[np.ndarray, np.ndarray]
) -> list[Path]:
    """300 Fashion-MNIST test images as JPEG files, in order."""
    images, _ = fashion_arrays
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for index in range(300):
        paths.append(folder / f"{index:03d}.jpg")
        paths[-1].write_bytes(_encoded(images[index], "jpeg"))
    return paths


def _stream(data: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNTIME, "predict", str(SHIPPED), "-", *args], input=data, capture_output=True,
                          timeout=300, check=False)  # type: ignore[call-overload]  # fmt: skip


def _lines(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 frames of ffmpeg's test source, 640x480 Motion JPEG, as a camera writes them."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    path = tmp_path_factory.mktemp("camera") / "camera.mjpeg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30", "-frames:v", "400",
                    "-q:v", "5", "-f", "mjpeg", str(path)], check=True, timeout=120)  # fmt: skip
    return path


def test_300_fashion_mnist_frames_give_the_same_top1_as_the_files(fashion_frames: list[Path]) -> None:
    files = subprocess.run([*RUNTIME, "predict", str(SHIPPED), *map(str, fashion_frames), "--json", "--top-k", "1"],
                           capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    expected = [r["top_k"][0]["label"] for r in json.loads(files.stdout)]
    done = _stream(b"".join(p.read_bytes() for p in fashion_frames), "--jsonl", "--top-k", "1")
    assert done.returncode == 0, done.stderr
    lines = _lines(done)
    assert [line["frame"] for line in lines] == list(range(1, 301))
    assert [line["top_k"][0]["label"] for line in lines] == expected
    assert all(line["decode_ms"] > 0 and line["invoke_ms"] > 0 for line in lines)
    assert "300 frame(s) in" in done.stderr.decode() and "300 classified" in done.stderr.decode()


@requires_ffmpeg
def test_an_ffmpeg_camera_stream_is_classified_frame_by_frame() -> None:
    producer = subprocess.Popen(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30",
                                 "-frames:v", "90", "-f", "mjpeg", "-"], stdout=subprocess.PIPE)  # fmt: skip
    consumer = subprocess.run([*RUNTIME, "predict", str(SHIPPED), "-", "--top-k", "2"], stdin=producer.stdout,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    producer.wait(timeout=60)
    assert consumer.returncode == 0, consumer.stderr
    rows = consumer.stdout.splitlines()
    assert len(rows) == 90 and rows[0].startswith("frame      1  ") and "invoke" in rows[-1]
    assert "90 frame(s)" in consumer.stderr and "0 byte(s) skipped" in consumer.stderr


def test_garbage_oversized_broken_and_truncated_frames(fashion_arrays: tuple[np.ndarray, np.ndarray]) -> None:
    images = fashion_arrays[0]
    first, second, third = (_encoded(images[i], "jpeg") for i in range(3))
    png = _encoded(images[3], "png")
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(noise, "JPEG")
    not_an_image = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xda\x00\x02" + b"\x13" * 200 + b"\xff\xd9"
    data = b"noise " * 100 + first + b"\x00" * 50 + png + not_an_image + noise.getvalue() + second + third[:200]
    done = _stream(data, "--jsonl", "--top-k", "1", "--max-frame-kb", "64")
    err = done.stderr.decode()
    assert done.returncode == 0, err
    lines = _lines(done)
    assert [line.get("kind") for line in lines] == ["jpeg", "png", "jpeg", "jpeg"]
    assert "error" in lines[2] and "frame 3: not an image" in lines[2]["error"]
    assert "3 classified" in err and "1 unreadable" in err
    skipped = int(err.split(" byte(s) skipped")[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert skipped >= 600 + 50 + 64 * 1024  # the noise, the zeros and the oversized frame streamed past
    assert "1 frame(s) over the 64 KB cap were dropped" in err
    assert "the stream ended inside its last frame (200 bytes)" in err


def test_a_live_camera_with_latest_keeps_the_newest_frame(camera: Path) -> None:
    producer = subprocess.Popen(["cat", str(camera)], stdout=subprocess.PIPE)
    latest = [*RUNTIME, "predict", str(SHIPPED), "-", "--latest", "--jsonl", "--threads", "1"]
    consumer = subprocess.run(latest, stdin=producer.stdout, capture_output=True, text=True, timeout=300, check=False)
    producer.wait(timeout=60)
    assert consumer.returncode == 0, consumer.stderr
    frames = [json.loads(line)["frame"] for line in consumer.stdout.splitlines()]
    dropped = int(consumer.stderr.split(" dropped")[0].rsplit(" ", 1)[-1])
    assert dropped > 0 and len(frames) + dropped == 400  # the model is slower than cat: it saw the newest
    assert frames == sorted(frames) and frames[-1] == 400
    every = _stream(camera.read_bytes()[: 30 * 17_000], "--every", "3", "--jsonl")
    taken = [json.loads(line)["frame"] for line in every.stdout.decode().splitlines()]
    assert taken and all(frame % 3 == 1 for frame in taken) and "passed over (--every 3)" in every.stderr.decode()


def test_watch_classifies_complete_files_as_they_are_written(tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "old.jpg").write_bytes((SHIPPED / "samples" / "bag.jpg").read_bytes())  # there before: left alone
    watcher = subprocess.Popen([*RUNTIME, "predict", str(SHIPPED), "--watch", str(folder), "--jsonl", "--top-k", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(3)  # the interpreter loads
    (folder / ".bag.tmp").write_bytes((SHIPPED / "samples" / "bag.jpg").read_bytes())
    (folder / ".bag.tmp").rename(folder / "bag.jpg")  # written, then renamed into place
    (folder / "notes.txt").write_text("not an image")
    content = (SHIPPED / "samples" / "sneaker.png").read_bytes()
    with open(folder / "sneaker.png", "wb") as stream:  # written in place, with a pause mid-way
        stream.write(content[:300])
        stream.flush()
        time.sleep(1.5)
        stream.write(content[300:])
    time.sleep(2)
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    seen = {Path(r["image"]).name: r["top_k"][0]["label"] for r in map(json.loads, out.splitlines())}
    assert seen == {"bag.jpg": "Bag", "sneaker.png": "Sneaker"}, out + err
    assert "2 image(s)" in err and "2 classified, 0 unreadable" in err


def test_predictor_stream_takes_files_chunks_and_images(fashion_frames: list[Path]) -> None:
    predictor = Predictor(SHIPPED)
    data = b"".join(p.read_bytes() for p in fashion_frames[:40])
    from_file = [r.top_k[0].label for r in predictor.stream(io.BytesIO(data), top_k=1)]
    chunks = (data[i : i + 1000] for i in range(0, len(data), 1000))
    from_chunks = [r.top_k[0].label for r in predictor.stream(chunks, top_k=1)]
    from_images = [r.top_k[0].label for r in predictor.stream((Image.open(p) for p in fashion_frames[:40]), top_k=1)]
    assert len(from_file) == 40 and from_file == from_chunks == from_images
    assert len(list(FrameSplitter(io.BytesIO(data).read))) == 40


def test_bench_stream_reports_frames_per_second_and_the_cost_beyond_invoke(camera: Path) -> None:
    done = subprocess.run([*RUNTIME, "bench", str(SHIPPED), "--stream", str(camera), "--json", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["frames"] == found["classified"] == 400 and found["frame_size"] == [640, 480]
    assert found["frames_per_s"] > 0 and found["invoke_ms"] > 0
    assert found["beyond_invoke_ms"] > 0 and found["full_size_ms"] > 0
