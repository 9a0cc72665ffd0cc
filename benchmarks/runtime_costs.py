"""edge_runtime's costs outside invoke(): cold start, per-image overhead, evaluation throughput.

Cold start is measured in fresh processes (import, load model, one prediction), beside
importing TensorFlow for comparison. Per-image overhead is the time of decode, resize,
quantize and top-k around invoke(), for a 224x224 MobileNetV2. Evaluation throughput is
images/s through Predictor.scores, batched against one image per invoke().
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

COLD_EDGE = """
import time, json, sys
start = time.perf_counter()
from edge_runtime import Predictor
from edge_runtime.bench import peak_memory_mb
predictor = Predictor(sys.argv[1])
top = predictor.predict(sys.argv[2], top_k=1)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb(), "label": top[0].label,
                  "backend": predictor.backend.label, "tensorflow_imported": "tensorflow" in sys.modules}))
"""
COLD_TF_IMPORT = """
import time, json
start = time.perf_counter()
import tensorflow
from edge_runtime.bench import peak_memory_mb
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb()}))
"""
COLD_TF_PREDICT = """
import time, json, sys
start = time.perf_counter()
from edge_runtime import Predictor
from edge_runtime.bench import peak_memory_mb
predictor = Predictor(sys.argv[1], backend="tensorflow")
top = predictor.predict(sys.argv[2], top_k=1)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb(), "label": top[0].label}))
"""


def _fresh_process(script: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cold_start(model: Path, image: Path, repeats: int = 7) -> dict[str, Any]:
    """Median wall time and peak memory of fresh processes, interleaved so noise hits all alike."""
    runs: dict[str, list[dict[str, Any]]] = {"edge_runtime": [], "import_tensorflow": [], "tensorflow_interpreter": []}
    for _ in range(repeats):
        runs["edge_runtime"].append(_fresh_process(COLD_EDGE, str(model), str(image)))
        runs["import_tensorflow"].append(_fresh_process(COLD_TF_IMPORT))
        runs["tensorflow_interpreter"].append(_fresh_process(COLD_TF_PREDICT, str(model), str(image)))
    summary: dict[str, Any] = {
        "model": str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model),
        "repeats": repeats,
    }
    for name, samples in runs.items():
        summary[name] = {
            "median_s": statistics.median(s["seconds"] for s in samples),
            "min_s": min(s["seconds"] for s in samples),
            "peak_mb": statistics.median(s["peak_mb"] for s in samples),
        }
    summary["edge_runtime"]["backend"] = runs["edge_runtime"][0]["backend"]
    summary["edge_runtime"]["tensorflow_imported"] = any(s["tensorflow_imported"] for s in runs["edge_runtime"])
    summary["speedup_vs_import_tensorflow"] = (
        summary["import_tensorflow"]["median_s"] / summary["edge_runtime"]["median_s"]
    )
    summary["memory_ratio_vs_import_tensorflow"] = (
        summary["import_tensorflow"]["peak_mb"] / summary["edge_runtime"]["peak_mb"]
    )
    return summary


def per_image_overhead(model: Path, image: Path, runs: int = 60) -> dict[str, Any]:
    """Time each step of predict() for one photo: decode+resize, quantize, invoke, scores+top-k."""
    from edge_runtime import Predictor
    from edge_runtime.backends import invoke
    from edge_runtime.images import load_pixels

    predictor = Predictor(model, threads=1)
    steps: dict[str, list[float]] = {"decode_resize": [], "quantize": [], "invoke": [], "dequantize_top_k": []}
    clock = time.perf_counter
    for index in range(runs + 5):
        t0 = clock()
        pixels = load_pixels(image, predictor.spec)
        t1 = clock()
        tensor = predictor._to_input_tensor(pixels[None])  # noqa: SLF001 - timing the steps predict() takes
        predictor._ensure_batch(1)  # noqa: SLF001
        predictor.interpreter.set_tensor(predictor.input_details["index"], tensor)
        t2 = clock()
        invoke(predictor.interpreter, predictor.model_path)
        t3 = clock()
        raw = predictor.interpreter.get_tensor(predictor.output_details["index"])
        predictor.top_k(predictor._from_output_tensor(raw)[0], 5)  # noqa: SLF001
        t4 = clock()
        if index >= 5:  # warm-up
            for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[name].append(seconds * 1000)
    medians = {name: statistics.median(values) for name, values in steps.items()}
    overhead = medians["decode_resize"] + medians["quantize"] + medians["dequantize_top_k"]
    with Image.open(image) as photo:
        size = photo.size
    return {
        "model": model.name,
        "image": f"{size[0]}x{size[1]} {image.suffix[1:].upper()}",
        "runs": runs,
        "threads": 1,
        "median_ms": medians,
        "overhead_ms": overhead,
        "overhead_share_of_invoke": overhead / medians["invoke"],
        "overhead_without_decode_ms": medians["quantize"] + medians["dequantize_top_k"],
    }


def evaluation_throughput(folder: Path, pixels: np.ndarray, precisions: list[str]) -> dict[str, Any]:
    """Images/s through Predictor.scores: batched invoke() against one image per invoke()."""
    from edge_runtime import Predictor

    results = {}
    for precision in precisions:
        batched = Predictor(folder / f"model_{precision}.tflite", threads=2)
        single = Predictor(folder / f"model_{precision}.tflite", threads=2)
        single._batchable = False  # noqa: SLF001 - the one-image-per-invoke path that fixed-batch models take
        timings = {}
        for name, predictor in (("batched", batched), ("one_at_a_time", single), ("batched_again", batched)):
            start = time.perf_counter()
            predictor.scores(pixels)
            timings[name] = time.perf_counter() - start
        best_batched = min(timings["batched"], timings["batched_again"])
        results[precision] = {
            "images": len(pixels),
            "batched_images_per_s": len(pixels) / best_batched,
            "one_at_a_time_images_per_s": len(pixels) / timings["one_at_a_time"],
            "speedup": timings["one_at_a_time"] / best_batched,
        }
    return results
