"""A stage's result read back from its model folder: what `run` returns for a stage it skips as up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..folder import BENCHMARK_JSON, DRIFT_JSON, HISTORY_JSON, KERAS_FILE, FolderStore
from .commits import parsed_results, read_results_json


def train_result(folder: Path) -> Any:
    """The TrainResult of the model in `folder`, from metadata.json and history.json."""
    from ..measure.learning import ClassCounts
    from ..training.stage import TrainResult

    store = FolderStore(folder)
    metadata = store.load()
    training, dataset = metadata.training, metadata.dataset
    history: dict[str, list[float]] = {}
    if HISTORY_JSON in metadata.files:
        history = read_results_json(store.verified(HISTORY_JSON, metadata), HISTORY_JSON)
    sizes = {key: int(value) for key, value in dict(dataset.get("sizes") or {}).items()}
    return TrainResult(
        folder=store.path,
        name=metadata.name,
        model=str(training.get("model")),
        input=metadata.input,
        test_accuracy=float(training.get("test_accuracy") or 0.0),
        test_loss=float(training.get("test_loss") or 0.0),
        parameters=int(training.get("parameters") or 0),
        epochs_run=int(training.get("epochs_run") or 0),
        best_epoch=int(training.get("best_epoch") or 0),
        seconds=float(training.get("seconds") or 0.0),
        sizes={"train": 0, "validation": 0, "test": 0, **sizes},
        skipped=[],
        history=history,
        model_bytes=store.verified(metadata.source.reference if metadata.source else KERAS_FILE, metadata)
        .stat()
        .st_size,
        classes=len(metadata.labels),
        batch_size=int(dict(training.get("hyperparameters") or {}).get("batch_size") or 0),
        distribute=training.get("distribute"),
        labels=list(metadata.labels),
        test_counts=ClassCounts.from_record(training.get("test_counts"), len(metadata.labels)),
    )


def convert_result(folder: Path) -> Any:
    from ..conversion.stage import ConvertResult

    metadata = FolderStore(folder).load()
    conversion = metadata.conversion or {}
    return ConvertResult(
        Path(folder), list(metadata.variants.values()), list(conversion.get("fallbacks") or []), 0.0,
        list(conversion.get("skipped") or []),
    )  # fmt: skip


def drift_result(folder: Path) -> Any:
    from ..measure.evaluate import DriftResult

    store = FolderStore(folder)
    metadata = store.load()
    data = read_results_json(store.verified(DRIFT_JSON, metadata), DRIFT_JSON)
    return parsed_results(DRIFT_JSON, lambda: DriftResult.from_dict(data, Path(folder)))


def benchmark_result(folder: Path) -> Any:
    from ..measure.benchmark import BenchmarkResult

    store = FolderStore(folder)
    metadata = store.load()
    data = read_results_json(store.verified(BENCHMARK_JSON, metadata), BENCHMARK_JSON)
    return parsed_results(BENCHMARK_JSON, lambda: BenchmarkResult.from_dict(data, Path(folder)))
