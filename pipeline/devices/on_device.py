"""Benchmark and evaluate a model folder on a device (`benchmark --on HOST`, `evaluate --on HOST`).

Results are stored under the device's name in the folder's benchmark.json and drift.json, beside
(never instead of) this machine's. A variant the device cannot run is a row with the reason.
Latency: `edge-runtime bench` in a fresh process per variant and thread count, the variants'
order rotated between thread counts. Accuracy: N class-balanced test images go to the device as one
.npy array; the device returns each variant's scores; this machine compares them with Keras and
with its own run of the same file.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.predictor import Predictor

from ..data.dataset import DataConfig, balanced_indices, load_dataset
from ..data.tf_pipeline import model_input_array
from ..errors import DataError, UsageError
from ..folder import BENCHMARK_JSON, DRIFT_JSON, FolderStore, Metadata, now
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from . import programs
from .deploy import Device, DeviceConfig, connect, ensure_deployed
from .facts import describe

DEFAULT_SAMPLES = 1000
IMAGES_STEM = ".evaluate-images"  # test images sent to the device, one .npy per distinct model input


def _failure(device: Device, done: Any, what: str) -> str:
    return device.ssh.explain(done, what, [device.python]).split(": ", 1)[-1]


@dataclass(repr=False)
class DeviceBenchmark(Shown):
    """One device's latency per variant and thread count, with the device's facts; prints as a table."""

    name: str
    facts: dict[str, Any]
    settings: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # precision -> {sha256, threads|error}

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": now(), "facts": self.facts, "settings": self.settings, "variants": self.variants}

    def summary(self) -> str:
        return f"latency of {len(self.variants)} variants on {self.name}"

    def table(self) -> Table:
        threads = self.settings["threads"]
        rows = []
        for precision, row in self.variants.items():
            if "error" in row:
                rows.append([precision, *(["-"] * len(threads)), f"cannot run: {row['error']}"])
                continue
            timed, memory = row.get("threads", {}), row.get("peak_memory_mb")
            cells = [
                f"{timed[str(t)]['p50_ms']:.3f} / {timed[str(t)]['p99_ms']:.3f}" if str(t) in timed else "-"
                for t in threads
            ]
            rows.append([precision, *cells, f"{memory:.1f}" if memory else "-"])
        columns = ["variant", *[f"p50/p99 ms @{t}t" for t in threads], "peak MB"]
        return Table(f"latency on {self.name}: {describe(self.facts)}", columns, rows)


@dataclass(repr=False)
class DeviceDrift(Shown):
    """One device's accuracy check: N test images through every variant there, against Keras and this machine."""

    name: str
    facts: dict[str, Any]
    samples: int
    keras_accuracy: float
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # precision -> accuracy, agreements | error

    def to_dict(self) -> dict[str, Any]:
        keys = ("facts", "samples", "keras_accuracy", "variants")
        return {"created_at": now(), **{key: getattr(self, key) for key in keys}}

    def summary(self) -> str:
        return f"accuracy of {len(self.variants)} variants on {self.name} ({self.samples:,} test images)"

    def table(self) -> Table:
        rows = []
        for precision, row in self.variants.items():
            if "error" in row:
                rows.append([precision, "-", "-", f"cannot run: {row['error']}"])
            else:
                rows.append([precision, *(f"{row[k]:.2%}" for k in ("accuracy", "agreement", "agreement_with_here"))])
        title = f"accuracy on {self.name} ({self.samples:,} test images; Keras {self.keras_accuracy:.2%})"
        return Table(title, ["variant", "accuracy", "agreement with Keras", "same class as here"], rows)


def benchmark_on(
    config: DeviceConfig, threads: tuple[int, ...], warmup: int, runs: int, reporter: Reporter | None = None
) -> DeviceBenchmark:
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.folder)
    with folder.writing("benchmark --on"):
        return _benchmark_on(folder, config, (threads, warmup, runs), reporter)


def _benchmark_on(
    folder: FolderStore, config: DeviceConfig, counts: tuple[tuple[int, ...], int, int], reporter: Reporter
) -> DeviceBenchmark:
    threads, warmup, runs = counts
    metadata = folder.load()
    device = connect(config, metadata, reporter)
    ensure_deployed(device, folder, metadata)
    result = DeviceBenchmark(device.name, device.facts, {"threads": list(threads), "warmup": warmup, "runs": runs})
    precisions = list(metadata.variants)
    with reporter.task(f"benchmarking on {device.name}", total=len(threads) * len(precisions)) as task:
        for turn, count in enumerate(threads):
            for precision in precisions[turn % len(precisions) :] + precisions[: turn % len(precisions)]:
                variant = metadata.variants[precision]
                row = result.variants.setdefault(precision, {"file": variant.file, "sha256": variant.sha256})
                words = ["bench", variant.file, "--threads", str(count), "--warmup", str(warmup), "--runs", str(runs)]
                done = device.edge_runtime([*words, "--json"], f"timing {variant.file}")
                if done.returncode != 0:
                    row["error"] = _failure(device, done, f"timing {variant.file}")
                elif "error" not in row:
                    timed = json.loads(done.stdout)
                    row.setdefault("threads", {})[str(count)] = timed["latency"]
                    row["peak_memory_mb"], row["backend"] = timed.get("peak_memory_mb"), timed.get("backend")
                task.advance()
    folder.store_device(BENCHMARK_JSON, device.name, result.to_dict(), metadata)
    return result


def _test_images(folder: FolderStore, metadata: Metadata, samples: int, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced test images as stored (before any model's preprocessing) and their labels."""
    try:
        data = DataConfig.from_record(metadata.dataset, config.data_path, config.data_dir)
        dataset = load_dataset(data, metadata.input, recorded=folder.recorded_split(metadata))
    except (DataError, UsageError) as error:
        raise DataError(f"evaluating on a device needs the test split: {error} (pass --data or --data-dir)") from None
    chosen = balanced_indices(dataset.test.labels, min(samples, len(dataset.test)), seed=data.seed)
    return dataset.test.images[chosen], dataset.test.labels[chosen]


def _npy(pixels: np.ndarray) -> bytes:
    payload = io.BytesIO()
    compact = pixels.astype(np.uint8) if np.array_equal(pixels, np.round(pixels)) and pixels.max() <= 255 else pixels
    np.save(payload, compact, allow_pickle=False)
    return payload.getvalue()


@dataclass(frozen=True)
class DeviceEvaluateConfig:
    device: DeviceConfig
    samples: int = DEFAULT_SAMPLES
    data_path: Path | None = None
    data_dir: Path | None = None


def evaluate_on(config: DeviceEvaluateConfig, reporter: Reporter | None = None) -> DeviceDrift:
    """Accuracy and agreement (with Keras, and with this machine's run of the same file) of every variant there."""
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.device.folder)
    with folder.writing("evaluate --on"):
        return _evaluate_on(folder, config, reporter)


def _evaluate_on(folder: FolderStore, config: DeviceEvaluateConfig, reporter: Reporter) -> DeviceDrift:
    metadata = folder.load()
    images, labels = _test_images(folder, metadata, config.samples, config)
    from ..measure.reference import load_reference

    keras_top = load_reference(folder, metadata).scores(model_input_array(images, metadata.input)).argmax(axis=1)
    device = connect(config.device, metadata, reporter)
    ensure_deployed(device, folder, metadata)
    # One file of model pixels per distinct input: a mediapipe variant takes RGB where the folder's takes gray.
    specs = {name: record.input_spec(metadata.input) for name, record in metadata.variants.items()}
    inputs = {
        spec: (model_input_array(images, spec), f"{IMAGES_STEM}-{i}.npy")
        for i, spec in enumerate(dict.fromkeys(specs.values()))
    }
    variants: dict[str, dict[str, Any]] = {}
    try:
        for pixels, name in inputs.values():
            device.program(programs.PUT, f"{device.directory}/{name}", "sending the test images", stdin=_npy(pixels))
            # the runtime runs in model/: the images lie beside it
        with reporter.task(f"evaluating on {device.name}", total=len(metadata.variants)) as task:
            for precision, spec in specs.items():
                variants[precision] = _variant_on(
                    device, folder, metadata, precision, (*inputs[spec], labels, keras_top)
                )
                task.advance()
    finally:
        for _, name in inputs.values():
            device.ssh.run([device.python, "-c", programs.REMOVE, f"{device.directory}/{name}"], "removing test images")
    result = DeviceDrift(device.name, device.facts, len(labels), float((keras_top == labels).mean()), variants)
    folder.store_device(DRIFT_JSON, device.name, result.to_dict(), metadata)
    return result


def _variant_on(
    device: Device, folder: FolderStore, metadata: Metadata, precision: str, data: tuple[Any, ...]
) -> dict[str, Any]:
    pixels, images_file, labels, keras_top = data
    variant = metadata.variants[precision]
    row: dict[str, Any] = {"file": variant.file, "sha256": variant.sha256}
    done = device.edge_runtime(["scores", variant.file, f"../{images_file}"], f"running {variant.file}")
    if done.returncode != 0:
        row["error"] = _failure(device, done, f"running {variant.file}")
        return row
    answer = json.loads(done.stdout)
    top = np.asarray(answer["top1"])
    here = Predictor(folder.file(variant.file), verify=False).scores(pixels).argmax(axis=1)
    row.update(
        accuracy=float((top == labels).mean()),
        agreement=float((top == keras_top).mean()),
        agreement_with_here=float((top == here).mean()),
        backend=answer.get("backend"),
    )
    return row
