"""A camera stream through the shipped model: frames per second end to end, and what a frame costs beyond invoke().

    python benchmarks/stream_rate.py      # about a minute on 2 cores

Streams are Motion JPEG written by ffmpeg, as `rpicam-vid --codec mjpeg` or `ffmpeg -f mjpeg` write them:
its test source at 640x480 and 1280x720 (`-q:v 5`), and Fashion-MNIST test images blown up to 640x480
colour photos, clean and with a sensor's noise at quality 92 (the costliest to decode: Huffman decoding, which
no reduced scale saves, grows with the entropy). Each stream goes through `edge-runtime bench
--stream` (`edge_runtime.stream.bench.measure`) on 1 thread, three times, alternating, and the medians are
kept. Beside the per-frame cost of decoding at the model's scale (Pillow's JPEG draft: 1/8 of 640x480 is
80x60, still above a 28x28 input; grayscale for a grayscale model) and resizing, the same preparation from a
full-size decode of the same frames, measured in the same pass. Writes benchmarks/results/stream_rate.{json,md,png}.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_runtime import Predictor  # noqa: E402
from edge_runtime.stream.bench import measure  # noqa: E402
from pipeline.measure.benchmark import machine_info  # noqa: E402
from pipeline.store.commits import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
REPEATS = 3


def testsrc(path: Path, size: str, frames: int = 300) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30",
                    "-frames:v", str(frames), "-q:v", "5", "-f", "mjpeg", str(path)], check=True)  # fmt: skip
    return path


def photos(path: Path, frames: int = 300, noise: float = 0.0, quality: int = 85) -> Path:
    """Fashion-MNIST images as 640x480 colour photos (a light table, a colour cast, optionally a sensor's noise),
    concatenated as MJPEG."""
    from pipeline.data.dataset import _read_idx

    images, rng = _read_idx(FASHION)[:frames], np.random.default_rng(0)
    with open(path, "wb") as stream:
        for index, image in enumerate(images):
            picture = Image.fromarray(255 - image).resize((360, 360), Image.BILINEAR).convert("RGB")
            canvas = Image.new("RGB", (640, 480), (200 + index % 40, 190, 170))
            canvas.paste(picture, (140, 60))
            if noise:
                noisy = np.asarray(canvas, dtype=np.float32) + rng.normal(0, noise, (480, 640, 3))
                canvas = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
            buffer = io.BytesIO()
            canvas.save(buffer, "JPEG", quality=quality)
            stream.write(buffer.getvalue())
    return path


def collect() -> dict[str, Any]:
    predictor = Predictor(SHIPPED, threads=1)
    with tempfile.TemporaryDirectory() as work:
        streams = {
            "testsrc 640x480": testsrc(Path(work) / "a.mjpeg", "640x480"),
            "testsrc 1280x720": testsrc(Path(work) / "b.mjpeg", "1280x720"),
            "photos 640x480": photos(Path(work) / "c.mjpeg"),
            "noisy photos 640x480, q92": photos(Path(work) / "d.mjpeg", noise=4.0, quality=92),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in streams}
        for _ in range(REPEATS):
            for name, path in streams.items():  # alternating: the machine's noise hits every stream alike
                runs[name].append(measure(predictor, path))
        sizes = {name: path.stat().st_size for name, path in streams.items()}
    rows = []
    for name, found in runs.items():
        keys = ("frames_per_s", "invoke_ms", "beyond_invoke_ms", "full_size_ms", "beyond_invoke_over_full_size")
        row = {"stream": name, "frames": found[0]["frames"], "kb_per_frame": sizes[name] / found[0]["frames"] / 1024}
        row.update({key: statistics.median(run[key] for run in found) for key in keys})
        rows.append(row)
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "model": predictor.model_path.name,
            "backend": predictor.backend.label, "threads": 1, "rows": rows}  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    out = [
        "# A camera stream through the shipped model",
        "",
        f"Run on {results['date']}; {machine['cpu']}, {machine['cores']} cores; `{results['model']}` of "
        f"`models/fashion-mnist-cnn` (28x28 grayscale) on {results['backend']}, 1 thread; medians of "
        f"{REPEATS} alternating runs of `edge-runtime bench --stream`. Regenerate with "
        "`python benchmarks/stream_rate.py`.",
        "",
        "| stream | frames | KB a frame | frames/s end to end | invoke ms | beyond invoke ms (decode at the model's "
        "scale, resize) | the same from a full-size decode ms | beyond invoke / full-size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        out.append(
            f"| {row['stream']} | {row['frames']} | {row['kb_per_frame']:.1f} | {row['frames_per_s']:,.0f} | "
            f"{row['invoke_ms']:.3f} | {row['beyond_invoke_ms']:.3f} | {row['full_size_ms']:.3f} | "
            f"{row['beyond_invoke_over_full_size']:.2f}x |"
        )
    out += ["", "![per-frame milliseconds](stream_rate.png)", ""]
    return "\n".join(out)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    x = np.arange(len(rows))
    axis.bar(x - 0.25, [r["invoke_ms"] for r in rows], 0.25, label="invoke()")
    axis.bar(x, [r["beyond_invoke_ms"] for r in rows], 0.25, label="beyond invoke: decode at the model's scale, resize")
    axis.bar(x + 0.25, [r["full_size_ms"] for r in rows], 0.25, label="the same from a full-size decode")
    axis.set_xticks(x, [r["stream"] for r in rows])
    axis.set_ylabel("ms a frame (median)")
    axis.set_title(f"a Motion JPEG stream through {results['model']} (28x28), 1 thread")
    axis.legend(frameon=False, fontsize=9)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120, format="png")
    plt.close(figure)


def main() -> int:
    results = collect()
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "stream_rate.json", results)
    with atomic_path(OUT / "stream_rate.png") as picture:
        plot(results, picture)
    atomic_write_text(OUT / "stream_rate.md", markdown(results))
    print(json.dumps(results["rows"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
