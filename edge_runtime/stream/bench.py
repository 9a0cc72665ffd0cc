"""`edge-runtime bench MODEL --stream FILE`: a Motion JPEG (or PNG) stream classified end to end.

Reports frames per second through the whole path (split, decode, resize, invoke), the time each frame
costs beyond invoke(), and, for scale, what the same preparation costs from a full-size decode: JPEG frames
are decoded at 1/2, 1/4 or 1/8 scale directly when the model needs that few pixels (Pillow's draft mode),
as grayscale for a grayscale model. Huffman decoding is not scaled, so the saving is smallest on
high-quality, noisy frames (benchmarks/results/stream_rate.md: 0.22-0.27x of the full-size path for clean
640x480 frames, 0.38x for 53 KB noisy photos at quality 92).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .. import safe_files
from ..errors import ImageError, UsageError
from ..images import decode_image, prepare_pixels, to_eight_bit
from ..limits import whole_number
from ..predictor import Predictor
from ..text import printable
from .frames import FrameSplitter
from .live import classify

WARMUP_FRAMES = 5


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def measure(predictor: Predictor, path: Path, top_k: int = 1) -> dict[str, Any]:
    """Per-frame timings over every frame of the file (read as a stream: one frame held at a time), then one
    timed end-to-end pass of `Predictor.stream`."""
    top_k = whole_number(top_k, "top_k", 1)
    descriptor = safe_files.open_regular(Path(path), "stream file", UsageError)
    overhead: list[float] = []
    invoke: list[float] = []
    full: list[float] = []
    size, count = None, 0
    with open(descriptor, "rb") as stream:
        for frame in FrameSplitter(stream.read):
            count += 1
            timed = _time_frame(predictor, frame, top_k, (overhead, invoke, full))
            size = size or timed
    if not count:
        raise UsageError(f"{path}: no JPEG or PNG frames in it")
    overhead, invoke, full = (v[WARMUP_FRAMES:] or v for v in (overhead, invoke, full))
    began = time.perf_counter()
    with open(path, "rb") as stream:
        done = sum(1 for result in predictor.stream(stream, top_k=top_k) if result.error is None)
    seconds = time.perf_counter() - began
    return {
        "stream": str(path),
        "frames": count,
        "frame_size": list(size) if size else None,
        "model_input": [predictor.spec.width, predictor.spec.height, predictor.spec.channels],
        "classified": done,
        "frames_per_s": done / seconds if seconds else 0.0,
        "invoke_ms": _median(invoke),
        "beyond_invoke_ms": _median(overhead),
        "full_size_ms": _median(full),
        "beyond_invoke_over_full_size": _median(overhead) / _median(full) if full and _median(full) else None,
        "backend": predictor.backend.label,
        "threads": predictor.threads,
    }


def _time_frame(predictor: Predictor, frame: Any, top_k: int, into: tuple[list[float], ...]) -> Any:
    """One frame classified end to end, and prepared again from a full-size decode; its size, or None."""
    result = classify(predictor, frame, top_k)
    if result.error:
        return None
    began = time.perf_counter()
    try:  # the same preparation from a full-size decode: what the model's scale saves
        image = decode_image(io.BytesIO(frame.data), f"frame {frame.index}")
        prepare_pixels(to_eight_bit(image), predictor.spec)
    except ImageError:
        return None
    overhead, invoke, full = into
    full.append((time.perf_counter() - began) * 1000)
    overhead.append(result.decode_ms)
    invoke.append(result.invoke_ms)
    return image.size


def run(args: argparse.Namespace) -> int:
    predictor = Predictor(args.model, threads=args.threads, backend=args.backend)
    if predictor.choice_note:
        print(f"edge-runtime: {printable(predictor.choice_note)}", file=sys.stderr)
    found = measure(predictor, args.stream)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    width, height = found["frame_size"] or ("?", "?")
    print(f"stream       {printable(found['stream'])}: {found['frames']} frames of {width}x{height}")
    print(f"model        {predictor.model_path.name} ({found['backend']}), input {found['model_input']}")
    print(f"end to end   {found['frames_per_s']:.1f} frames/s ({found['classified']} classified)")
    print(f"per frame    invoke {found['invoke_ms']:.3f} ms, beyond invoke (decode at the model's scale, resize) "
          f"{found['beyond_invoke_ms']:.3f} ms")  # fmt: skip
    ratio = found["beyond_invoke_over_full_size"]
    print(f"full size    {found['full_size_ms']:.3f} ms a frame to decode at full size, then convert and resize"
          + (f" (beyond invoke is {ratio:.2f}x of it)" if ratio is not None else ""))  # fmt: skip
    return 0
