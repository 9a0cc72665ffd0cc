"""Latency of ``invoke()``: warm-up, timed runs, percentiles, model size and peak memory."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import AUTO, invoke, load_interpreter
from .limits import MAX_RUNS, MAX_WARMUP, optional_threads, whole_number


@dataclass(frozen=True)
class LatencyStats:
    """Summary of invoke() times in milliseconds."""

    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float

    @property
    def images_per_second(self) -> float:
        return 1000.0 / self.mean_ms if self.mean_ms > 0 else 0.0

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> LatencyStats:
        if not samples_ms:
            raise ValueError("no latency samples")
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])  # linear interpolation, as benchmark tools do
        return cls(
            runs=len(values),
            mean_ms=float(values.mean()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            min_ms=float(values.min()),
            max_ms=float(values.max()),
            std_ms=float(values.std()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_s": self.images_per_second}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        """The inverse of to_dict (images_per_s is derived, so it is not read back)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class BenchResult:
    """What `edge-runtime bench` reports for one model."""

    model: str
    bytes: int
    backend: str
    threads: int | None
    warmup: int
    load_ms: float
    latency: LatencyStats
    peak_memory_mb: float | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = self.latency.to_dict()
        return data


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process in MiB (None where the OS does not tell).

    Linux's VmHWM first: ru_maxrss survives exec(), so a process started by a large
    parent (the pipeline, with TensorFlow loaded) would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def fill_inputs(interpreter: Any, seed: int = 0) -> None:
    """Put deterministic random data of the right dtype into every input tensor."""
    rng = np.random.default_rng(seed)
    for details in interpreter.get_input_details():
        dtype = np.dtype(details["dtype"])
        shape = details["shape"]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(max(info.min, -128), min(info.max, 255) + 1, size=shape).astype(dtype)
        else:
            data = rng.uniform(0, 255, size=shape).astype(dtype)
        interpreter.set_tensor(details["index"], data)


def time_invokes(interpreter: Any, runs: int) -> list[float]:
    """Wall time of `runs` consecutive invoke() calls, in milliseconds (at most MAX_RUNS + MAX_WARMUP)."""
    runs = whole_number(runs, "runs", 0, MAX_RUNS + MAX_WARMUP, "split a longer measurement into several runs")
    samples = []
    clock = time.perf_counter
    for _ in range(runs):
        start = clock()
        interpreter.invoke()
        samples.append((clock() - start) * 1000.0)
    return samples


def check_counts(warmup: Any, runs: Any) -> tuple[int, int]:
    """Warm-up and timed runs as whole numbers within their limits (edge_runtime.limits), else one UsageError."""
    warmup = whole_number(warmup, "warmup", 0, MAX_WARMUP, "an interpreter is warm after a few invokes")
    return warmup, whole_number(runs, "runs", 1, MAX_RUNS, "split a longer measurement into several runs")


def benchmark(
    model: Path, threads: int | None = None, warmup: int = 10, runs: int = 100, backend: str = AUTO
) -> BenchResult:
    """Load a model, warm it up, and time `runs` invoke() calls on random input."""
    warmup, runs = check_counts(warmup, runs)
    threads = optional_threads(threads)
    start = time.perf_counter()
    interpreter, chosen = load_interpreter(Path(model), threads, backend)
    load_ms = (time.perf_counter() - start) * 1000.0
    fill_inputs(interpreter)
    invoke(interpreter, Path(model))  # a model that cannot run fails here, as one line
    time_invokes(interpreter, warmup)
    latency = LatencyStats.from_samples(time_invokes(interpreter, runs))
    return BenchResult(
        model=str(model),
        bytes=Path(model).stat().st_size,
        backend=chosen.label,
        threads=threads,
        warmup=warmup,
        load_ms=load_ms,
        latency=latency,
        peak_memory_mb=peak_memory_mb(),
    )
