"""What the training machine asks a device over SSH: its facts, and class scores for an array of images.

Run on the device as `python -m edge_runtime device-facts` and `python -m edge_runtime scores`.
Facts come from the device's own Python, not from the shell: under an emulator or a wrapper
script `uname -m` would describe the host, `platform.machine()` describes the interpreter that runs
the model.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from .backends import get_backend
from .errors import EdgeRuntimeError, UsageError
from .limits import MAX_SCORE_IMAGES
from .predictor import Predictor


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return ""


def _cpu() -> str:
    """The CPU's name: x86 'model name'; on Arm, the core part number named when we know it."""
    parts = {"0xd0b": "Cortex-A76", "0xd08": "Cortex-A72", "0xd03": "Cortex-A53", "0xd05": "Cortex-A55"}
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware") and value:
            return value
        if key == "cpu part" and value:
            return parts.get(value.lower(), f"Arm part {value}")
    return platform.processor() or platform.machine()


def _board() -> str | None:
    """The board: /proc/device-tree/model, else the `Model` line Raspberry Pi kernels add to /proc/cpuinfo."""
    model = _read("/proc/device-tree/model")
    if model:
        return model
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model" and value.strip():
            return value.strip()
    return None


def _os() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def facts() -> dict[str, Any]:
    """machine, CPU, board model, cores, OS, Python, and the TFLite interpreter (None when there is none)."""
    try:
        backend = get_backend()
        interpreter: dict[str, Any] | None = {
            "name": backend.name,
            "version": backend.version,
            "runtime": backend.runtime_version,
        }
        problem = None
    except EdgeRuntimeError as error:
        interpreter, problem = None, str(error)
    return {
        "machine": platform.machine(),
        "cpu": _cpu(),
        "model": _board(),
        "cores": os.cpu_count(),
        "os": _os(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "interpreter": interpreter,
        "interpreter_error": problem,
    }


def scores(model: Path, images: Path, threads: int | None = None) -> dict[str, Any]:
    """Class scores of every image in a .npy array (N, H, W, C: model input, as preprocessed) by one model: at
    most MAX_SCORE_IMAGES of them, read from the file a batch at a time (memory-mapped, never all converted)."""
    try:
        pixels = np.load(images, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{images}: not a readable .npy array ({error})") from None
    if pixels.ndim != 4:
        raise UsageError(f"{images}: expected images (N, height, width, channels), got shape {pixels.shape}")
    if len(pixels) > MAX_SCORE_IMAGES:
        raise UsageError(
            f"{images}: {len(pixels):,} images, over the limit of {MAX_SCORE_IMAGES:,} for one `scores` call; "
            "send fewer (edge-pipeline evaluate --samples)"
        )
    predictor = Predictor(model, threads=threads)
    batches = [predictor.scores(np.asarray(pixels[i : i + 256], dtype=np.float32)) for i in range(0, len(pixels), 256)]
    result = np.concatenate(batches) if batches else np.zeros((0, predictor.num_classes), np.float32)
    return {
        "model": predictor.model_path.name,
        "variant": predictor.variant,
        "backend": predictor.backend.label,
        "images": len(pixels),
        "top1": result.argmax(axis=1).tolist(),
        "scores": np.round(result, 6).tolist(),
    }
