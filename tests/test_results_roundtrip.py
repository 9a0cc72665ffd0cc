"""Typed results both ways: what a stage writes reads back into the same typed result (issue 10)."""

from __future__ import annotations

import json

from edge_runtime.bench import LatencyStats
from edge_runtime.folder.reader import FolderMetadata, TensorQuantization, load_metadata
from pipeline.folder import VARIANTS
from pipeline.measure.benchmark import BenchmarkResult
from pipeline.measure.evaluate import DriftResult
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"


def _without(data: dict, *keys: str) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


def test_drift_json_round_trips() -> None:
    written = json.loads((SHIPPED / "drift.json").read_text())
    result = DriftResult.from_dict(written, SHIPPED)
    assert result.test_images == 10000 and {v.precision for v in result.variants} == set(VARIANTS)
    assert result.variants[0].per_class[0].label and result.keras_accuracy == written["keras"]["accuracy"]
    again = result.to_dict()
    assert DriftResult.from_dict(again, SHIPPED).to_dict() == again  # a fixed point
    for key in ("test_images", "max_drop_pp", "failed"):
        assert again[key] == written[key]
    for precision, record in written["variants"].items():  # every written field survives
        assert {k: again["variants"][precision][k] for k in record} == record
    assert {k: again["keras"][k] for k in written["keras"]} == written["keras"]


def test_benchmark_json_round_trips() -> None:
    written = json.loads((SHIPPED / "benchmark.json").read_text())
    result = BenchmarkResult.from_dict(written, SHIPPED)
    assert [v.precision for v in result.variants] == list(VARIANTS)
    assert isinstance(result.variants[0].latency[1], LatencyStats) and result.machine["cores"] >= 1
    # `devices` (SSH and emulated runs) is kept beside the host's result by the folder's store, not by this type
    assert _without(result.to_dict(), "created_at") == _without(written, "created_at", "devices")


def test_metadata_json_round_trips() -> None:
    written = json.loads((SHIPPED / "metadata.json").read_text())
    metadata = load_metadata(SHIPPED)
    assert isinstance(metadata, FolderMetadata) and metadata.variants["int8"].input == TensorQuantization(
        "int8", 1.0, -128
    )
    assert metadata.to_dict() == written
    assert FolderMetadata.from_dict(metadata.to_dict()).to_dict() == written
