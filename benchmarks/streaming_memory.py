"""Peak memory of one training epoch on an image folder of 1,500 against 6,000 photos, streamed and in memory.

Issue 14's acceptance: MobileNetV2 (alpha 0.35, 160 px) trained one epoch on 6,000 photos peaks at most
250 MB above the same run on 1,500. Each run is a fresh process (`pipeline.training.stage.train`, weights none:
no ImageNet weights here), its peak resident memory read with wait4() from the kernel. The photos are
Fashion-MNIST images blown up to 320x240 RGB JPEGs with a colour cast per image, in three classes.
The in-memory path (`DataConfig(stream=False)`) runs beside it for contrast: it holds every photo at
160 px, 77 KB each.

    python benchmarks/streaming_memory.py [--work DIR] [--sizes 1500,6000]

Writes benchmarks/results/streaming_memory.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLASSES = {0: "top", 1: "trouser", 7: "sneaker"}
BUDGET_MB = 250.0
TRAIN = """
import sys
from pathlib import Path
from pipeline.data.dataset import DataConfig
from pipeline.training.models import ModelOptions
from pipeline.training.stage import HyperParams, TrainConfig, train
folder, out, stream = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "stream"
config = TrainConfig(
    data=DataConfig(data_path=folder, stream=stream),
    model="mobilenet_v2",
    options=ModelOptions(alpha=0.35, input_size=160, weights="none"),
    hparams=HyperParams(epochs=1, batch_size=32),
    output=out,
    overwrite=True,
)
result = train(config)
print(result.test_accuracy)
"""


def photos(root: Path, count: int) -> Path:
    """`count` JPEG photos (320x240 RGB) in three class folders, made once and reused."""
    folder = root / f"photos-{count}"
    if (folder / ".complete").is_file():
        return folder
    from pipeline.data.named import NAMED_DATASETS

    (x, y, _, _), _ = NAMED_DATASETS["fashion-mnist"].load(None, False)
    rng = np.random.default_rng(0)
    for label, name in CLASSES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(y == label)[: count // len(CLASSES)]
        for index, member in enumerate(members):
            image = Image.fromarray(x[member].reshape(x.shape[1], x.shape[2]))
            gray = image.resize((240, 240), Image.Resampling.BILINEAR)
            tint = rng.uniform(0.6, 1.0, size=3)
            rgb = (np.asarray(gray, np.float32)[..., None] * tint).astype(np.uint8)
            canvas = np.full((240, 320, 3), rng.integers(0, 60), np.uint8)
            canvas[:, 40:280] = rgb
            Image.fromarray(canvas).save(folder / name / f"{name}_{index:05d}.jpg", quality=90)
    (folder / ".complete").write_text("")
    return folder


def peak_run(folder: Path, out: Path, stream: bool) -> dict[str, float]:
    """Train in a fresh process; its peak resident memory (MB, from wait4) and seconds."""
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-c", TRAIN, str(folder), str(out), "stream" if stream else "memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training on {folder} failed (exit {os.waitstatus_to_exitcode(status)})")
    return {
        "peak_mb": usage.ru_maxrss / 1024,
        "seconds": time.perf_counter() - began,
        "test_accuracy": float(output.strip().splitlines()[-1]),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    sizes = sorted({row["photos"] for row in rows})
    for offset, (how, colour) in enumerate((("streamed", "tab:blue"), ("in memory", "tab:red"))):
        peaks = [next(r["peak_mb"] for r in rows if r["photos"] == size and r["how"] == how) for size in sizes]
        bars = axis.bar(np.arange(len(sizes)) + offset * 0.38, peaks, 0.36, label=how, color=colour)
        axis.bar_label(bars, fmt="%.0f MB", fontsize=8)
    axis.set_xticks(np.arange(len(sizes)) + 0.19, [f"{size:,} photos" for size in sizes])
    axis.set_ylabel("peak resident memory (MB)")
    axis.set_title("One epoch of MobileNetV2 (alpha 0.35, 160 px)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "streaming")
    parser.add_argument("--sizes", default="1500,6000")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sizes.split(",")]
    rows = []
    for size in sizes:
        folder = photos(args.work, size)
        for how, stream in (("streamed", True), ("in memory", False)):
            print(f"{size} photos, {how} ...", flush=True)
            measured = peak_run(folder, args.work / f"model-{size}-{stream}", stream)
            rows.append({"photos": size, "how": how, **measured})
            print(f"  peak {measured['peak_mb']:.0f} MB, {measured['seconds']:.0f} s", flush=True)
    small, large = min(sizes), max(sizes)
    growth = {
        how: next(r["peak_mb"] for r in rows if r["photos"] == large and r["how"] == how)
        - next(r["peak_mb"] for r in rows if r["photos"] == small and r["how"] == how)
        for how in ("streamed", "in memory")
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "streaming_memory.json").write_text(json.dumps({"rows": rows, "growth_mb": growth}, indent=2) + "\n")
    plot(rows, RESULTS / "streaming_memory.png")
    lines = [
        f"# Peak memory of one training epoch: {small:,} against {large:,} photos",
        "",
        "| photos | path | peak MB | seconds | test accuracy |",
        "|---|---|---|---|---|",
        *[
            f"| {r['photos']:,} | {r['how']} | {r['peak_mb']:.0f} | {r['seconds']:.0f} | {r['test_accuracy']:.2%} |"
            for r in rows
        ],
        "",
        *[f"- {how}: {large:,} photos peak {value:+.0f} MB against {small:,}" for how, value in growth.items()],
        f"- budget for the streamed path: {BUDGET_MB:.0f} MB, {'met' if growth['streamed'] <= BUDGET_MB else 'MISSED'}",
        "",
        "![peak memory](streaming_memory.png)",
    ]
    (RESULTS / "streaming_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
