"""Latency of every TFLite variant of a model folder (`edge-pipeline benchmark`).

Variants are timed in interleaved rounds, so that whatever else the machine is doing hits
them alike; peak memory comes from a separate `edge-runtime bench` process per variant
(interpreter only, no TensorFlow), which is what a device would see.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_runtime.backends import get_backend, load_interpreter
from edge_runtime.bench import LatencyStats, fill_inputs, time_invokes

from ..choices import Precision
from ..devices import programs
from ..folder import BENCHMARK_JSON, MB, FolderStore, library_versions, now
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter

# The most a benchmark may be asked for (options past them are refused in one line): 100,000 invokes of a
# MobileNetV2 at 20 ms take half an hour, a bound a person can wait for and a CI job can time out on.
MAX_RUNS = 100_000
MAX_WARMUP = 10_000
MAX_ROUNDS = 1_000


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to time and how long."""

    folder: Path
    threads: tuple[int, ...] = (1, 2, 4)
    warmup: int = 20
    runs: int = 200
    rounds: int = 10  # runs are split into this many interleaved rounds
    precisions: tuple[Precision, ...] | None = None
    memory: bool = True  # measure peak memory in a separate process per variant


@dataclass
class VariantTiming:
    precision: str
    file: str
    sha256: str
    bytes: int
    latency: dict[int, LatencyStats] = field(default_factory=dict)  # by thread count
    peak_memory_mb: float | None = None
    load_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "peak_memory_mb": self.peak_memory_mb,
            "load_ms": self.load_ms,
            "threads": {str(t): stats.to_dict() for t, stats in self.latency.items()},
        }

    @classmethod
    def from_dict(cls, precision: str, data: dict[str, Any]) -> VariantTiming:
        latency = {int(t): LatencyStats.from_dict(stats) for t, stats in data.get("threads", {}).items()}
        return cls(
            precision,
            data["file"],
            data["sha256"],
            int(data["bytes"]),
            latency,
            data.get("peak_memory_mb"),
            data.get("load_ms"),
        )


@dataclass(repr=False)
class BenchmarkResult(Shown):
    """benchmark.json: latency of every variant at every thread count, on this machine; prints as a table."""

    folder: Path
    machine: dict[str, Any]
    settings: dict[str, Any]
    variants: list[VariantTiming]

    def summary(self) -> str:
        return f"latency of {len(self.variants)} variants on {self.machine.get('cpu')}"

    def table(self) -> Table:
        threads = self.settings["threads"]
        cores = self.machine.get("cores") or 0
        over = {t: f" ({t} threads on {cores} cores)" if cores and t > cores else "" for t in threads}
        columns = ["variant", "size KB", *(f"p50/p99 ms @{t}t{over[t]}" for t in threads), f"images/s @{threads[0]}t"]
        rows = []
        for v in self.variants:
            cells = [v.precision, f"{v.bytes / 1024:,.1f}"]
            cells += [
                f"{v.latency[t].p50_ms:.3f} / {v.latency[t].p99_ms:.3f}" if t in v.latency else "-" for t in threads
            ]
            cells.append(f"{v.latency[threads[0]].images_per_second:,.0f}" if threads[0] in v.latency else "-")
            rows.append([*cells, f"{v.peak_memory_mb:.1f}" if v.peak_memory_mb else "-"])
        machine = self.machine
        title = f"latency ({machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('interpreter')})"
        return Table(title, [*columns, "peak MB"], rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": now(),
            "machine": self.machine,
            "settings": self.settings,
            "variants": {v.precision: v.to_dict() for v in self.variants},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> BenchmarkResult:
        """benchmark.json read back; the inverse of to_dict (created_at aside)."""
        variants = [VariantTiming.from_dict(p, v) for p, v in data.get("variants", {}).items()]
        return cls(folder, dict(data.get("machine") or {}), dict(data.get("settings") or {}), variants)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, cores, OS and library versions: what a latency number needs beside it."""
    versions = library_versions()
    try:
        backend = get_backend().label
    except Exception:  # noqa: BLE001 - recorded, not required
        backend = "none"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "interpreter": backend,
        "versions": versions,
    }


def peak_memory(path: Path, threads: int) -> tuple[float | None, float | None]:
    """(peak MiB, load ms) of `edge-runtime bench` on one model, in a fresh process.

    edge_runtime's own folder first on the path, the current directory (maybe a model folder) off it.
    """
    command = [
        sys.executable,
        "-c",
        programs.BOOT,
        str(Path(__file__).resolve().parent.parent),
        "bench",
        str(path),
        "--threads",
        str(threads),
        "--warmup",
        "2",
        "--runs",
        "10",
        "--json",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if completed.returncode != 0:
        return None, None
    data = json.loads(completed.stdout)
    return data.get("peak_memory_mb"), data.get("load_ms")


def benchmark(config: BenchmarkConfig, reporter: Reporter | None = None) -> BenchmarkResult:
    """Time every variant at every thread count; write benchmark.json; return the numbers."""
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.folder)
    with folder.writing("benchmark"):
        return _benchmark(folder, config, reporter)


def _benchmark(folder: FolderStore, config: BenchmarkConfig, reporter: Reporter) -> BenchmarkResult:
    metadata = folder.load()
    folder.check_room(2 * MB, "benchmark")
    paths = folder.verified_variants(metadata, config.precisions, "benchmark")
    precisions = list(paths)
    timings = {
        p: VariantTiming(p, metadata.variants[p].file, metadata.variants[p].sha256, metadata.variants[p].bytes)
        for p in precisions
    }
    per_round = max(1, config.runs // config.rounds)
    total = len(config.threads) * config.rounds * len(precisions)
    with reporter.task("benchmarking", total=total) as task:
        for threads in config.threads:
            interpreters = {}
            for precision, path in paths.items():
                interpreter, _ = load_interpreter(path, threads)
                fill_inputs(interpreter)
                time_invokes(interpreter, config.warmup)
                interpreters[precision] = interpreter
            samples: dict[str, list[float]] = {p: [] for p in precisions}
            for round_index in range(config.rounds):
                # Rotate the order each round so no variant always runs first (cache, turbo).
                shift = round_index % len(precisions)
                for precision in precisions[shift:] + precisions[:shift]:
                    samples[precision].extend(time_invokes(interpreters[precision], per_round))
                    task.advance()
            for precision in precisions:
                timings[precision].latency[threads] = LatencyStats.from_samples(samples[precision])
            del interpreters
    if config.memory:
        for precision, path in paths.items():
            timings[precision].peak_memory_mb, timings[precision].load_ms = peak_memory(path, config.threads[0])

    result = BenchmarkResult(
        folder=folder.path,
        machine=machine_info(),
        settings={
            "threads": list(config.threads),
            "warmup": config.warmup,
            "runs": per_round * config.rounds,
            "rounds": config.rounds,
            "interleaved": True,
            "input": "random, fixed seed",
        },
        variants=[timings[p] for p in precisions],
    )
    folder.commit_json(
        BENCHMARK_JSON, result.to_dict(), metadata, keep=("devices",)
    )  # results from devices (--on HOST) stay
    return result
