"""Peak memory of one training epoch on 1,500 against 6,000 photos, with the image statistics before and after
issue #28 (they held up to 2,000 training images at once; they now read 32 at a time).

Issue #28's acceptance: MobileNetV2 (alpha 0.35, 160 px, batch 32, weights none: no ImageNet weights here)
trained one epoch on 6,000 photos peaks at most 150 MB above the same run on 1,500. Each run is a fresh
process (`pipeline.training.stage.train`, the streamed path every image folder takes), its peak resident
memory read with wait4() from the kernel; the photos are streaming_memory.py's (Fashion-MNIST blown up to
320x240 RGB JPEGs, three classes). The same runs with the statistics as they were before (the reference
below, put in place of `image_stats` in the training process) show what the chunks saved, in the same run.
A second table measures the statistics alone (no TensorFlow) on decoded images at 160 and 224 px.

    python benchmarks/training_memory.py [--work DIR] [--sizes 1500,6000]
    python benchmarks/training_memory.py --render    # the markdown again from the JSON, nothing run

Writes benchmarks/results/training_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.streaming_memory import photos  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BUDGET_MB = 150.0

# The image statistics before issue #28: every sampled image at once as float32, plus an int16 copy.
REFERENCE = """
import numpy as np

def image_stats(dataset, spec, native):
    images, count = dataset.train.images, len(dataset.train)
    chosen = np.sort(np.random.default_rng(0).choice(count, size=min(2000, count), replace=False))
    pixels = np.asarray(images[chosen]).astype(np.float32)
    if spec.invert:
        pixels = 255.0 - pixels
    means = pixels.reshape(len(chosen), -1).mean(axis=1)
    colour = 0.0
    if native.channels != 1 and pixels.shape[-1] == 3:
        values = pixels.astype(np.int16)
        colour = float((values.max(axis=-1) - values.min(axis=-1)).mean())
    return {
        "native": {"height": native.height, "width": native.width, "channels": native.channels},
        "brightness": {"mean": round(float(means.mean()), 2), "std": round(float(means.std()), 2)},
        "colour": round(colour, 2), "images": len(chosen),
    }
"""

TRAIN = """
import sys
from pathlib import Path
from pipeline.data.dataset import DataConfig
from pipeline.training import stage
from pipeline.training.models import ModelOptions
from pipeline.training.stage import HyperParams, TrainConfig, train
folder, out, statistics = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if statistics == "before":
    exec(sys.argv[4], namespace := {})
    stage.image_stats = namespace["image_stats"]
config = TrainConfig(
    data=DataConfig(data_path=folder),
    model="mobilenet_v2",
    options=ModelOptions(alpha=0.35, input_size=160, weights="none"),
    hparams=HyperParams(epochs=1, batch_size=32),
    output=out,
    overwrite=True,
)
result = train(config)
print(result.test_accuracy)
"""

# The statistics alone on `count` decoded images of `side` px on disk (what training reads), in a fresh process.
ALONE = """
import sys, tempfile
from pathlib import Path
import numpy as np
from edge_runtime.folder.reader import InputSpec
from pipeline.data.dataset import Dataset, Split
from pipeline.data.named import NativeFormat
from pipeline.data.statistics import image_stats
from pipeline.data.streamed import DiskImages
count, side, statistics = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if statistics == "before":
    exec(sys.argv[4], namespace := {})
    image_stats = namespace["image_stats"]
rows = Path(tempfile.mkdtemp()) / "rows.u8"
rng = np.random.default_rng(0)
with open(rows, "wb") as stream:
    for _ in range(count):
        stream.write(rng.integers(0, 256, (side, side, 3), dtype=np.uint8).tobytes())
split = Split(DiskImages(rows, (side, side, 3)), np.zeros(count, np.int64))
open("/proc/self/clear_refs", "w").write("5")
before = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
image_stats(Dataset("x", ["a"], split, split, split, "bench"), InputSpec(side, side, 3), NativeFormat(480, 640, 3))
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
rows.unlink()
print((peak - before) / 1024)
"""


def _run(argv: list[str]) -> tuple[float, str]:
    """A fresh process: its peak resident memory (MB, from wait4) and its last line of output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:3]} failed (exit {os.waitstatus_to_exitcode(status)})")
    return usage.ru_maxrss / 1024, output.strip().splitlines()[-1]


def training_rows(work: Path, sizes: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        folder = photos(work, size)
        for statistics in ("before", "after"):
            print(f"{size} photos, statistics {statistics} #28 ...", flush=True)
            began = time.perf_counter()
            out = work / f"model-{size}-{statistics}"
            peak, last = _run([sys.executable, "-c", TRAIN, str(folder), str(out), statistics, REFERENCE])
            rows.append({"photos": size, "statistics": statistics, "peak_mb": peak,
                         "seconds": time.perf_counter() - began, "test_accuracy": float(last)})  # fmt: skip
            print(f"  peak {peak:.0f} MB", flush=True)
    return rows


def alone_rows() -> list[dict]:
    rows = []
    for side in (160, 224):
        for count in (1200, 4800):  # the training split of 1,500 and 6,000 photos
            for statistics in ("before", "after"):
                _, last = _run([sys.executable, "-c", ALONE, str(count), str(side), statistics, REFERENCE])
                rows.append({"side": side, "images": count, "statistics": statistics, "peak_mb": float(last)})
    return rows


def _growth(rows: list[dict], statistics: str) -> float:
    peaks = {r["photos"]: r["peak_mb"] for r in rows if r["statistics"] == statistics}
    return peaks[max(peaks)] - peaks[min(peaks)]


def markdown(record: dict) -> list[str]:
    training, alone, run = record["training"], record["alone"], record["run"]
    small, large = min(r["photos"] for r in training), max(r["photos"] for r in training)
    after = _growth(training, "after")
    peaks = {(r["side"], r["images"], r["statistics"]): r["peak_mb"] for r in alone}
    return [
        f"# Peak memory of one training epoch: {small:,} against {large:,} photos (issue #28)",
        "",
        f"Run on {run['date']}; {run['cpu']}, {run['cores']} cores. MobileNetV2 (alpha 0.35, 160 px, batch 32,",
        "weights none), one epoch, the streamed path; each run a fresh process, its peak resident memory from the",
        "kernel. `before`: the image statistics as they were (every sampled image at once, float32 plus an int16",
        "copy); `after`: read 32 images at a time. Regenerate with `python benchmarks/training_memory.py`.",
        "",
        "| photos | image statistics | peak MB | seconds | test accuracy |",
        "|---|---|---|---|---|",
        *[
            f"| {r['photos']:,} | {r['statistics']} | {r['peak_mb']:.0f} | {r['seconds']:.0f} | "
            f"{r['test_accuracy']:.2%} |"
            for r in training
        ],
        "",
        f"- before: {large:,} photos peak {_growth(training, 'before'):+.0f} MB against {small:,}",
        f"- after: {large:,} photos peak {after:+.0f} MB against {small:,}",
        f"- budget: {BUDGET_MB:.0f} MB, {'met' if after <= BUDGET_MB else 'MISSED'}",
        "",
        "## The statistics alone",
        "",
        "`image_stats` on decoded images on disk (random pixels), no TensorFlow; the peak above what the process",
        "held before it (VmHWM after /proc/self/clear_refs).",
        "",
        "| size | training images | before MB | after MB |",
        "|---|---|---|---|",
        *[
            f"| {side} px | {count:,} | {peaks[(side, count, 'before')]:.1f} | {peaks[(side, count, 'after')]:.1f} |"
            for side, count in sorted({(r["side"], r["images"]) for r in alone})
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "streaming")
    parser.add_argument("--sizes", default="1500,6000")
    parser.add_argument("--render", action="store_true", help="write the markdown from the JSON; run nothing")
    args = parser.parse_args()
    if args.render:
        record = json.loads((RESULTS / "training_memory.json").read_text())
    else:
        from pipeline.measure.benchmark import cpu_model

        run = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cores": os.cpu_count()}
        alone = alone_rows()
        training = training_rows(args.work, [int(part) for part in args.sizes.split(",")])
        growth = _growth(training, "after")
        record = {"run": run, "training": training, "alone": alone, "growth_mb": growth, "budget_mb": BUDGET_MB}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "training_memory.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = markdown(record)
    (RESULTS / "training_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
