"""benchmark.json and the report: the fields users compare, and numbers equal to their sources."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pipeline.folder import PRECISIONS, VARIANTS
from pipeline.measure.benchmark import BenchmarkConfig, benchmark
from pipeline.reporting.build import ReportConfig, ReportRow, build_report, recommend, write_report
from tests.conftest import ROOT, requires_fashion_mnist

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"


@pytest.fixture(scope="module")
def reported_folder(trained_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reported") / "fmnist"
    shutil.copytree(trained_folder, folder)
    benchmark(BenchmarkConfig(folder=folder, threads=(1, 2), warmup=3, runs=30, rounds=3))
    write_report(ReportConfig(folder=folder, max_drop=1.0, samples=12))
    return folder


@requires_fashion_mnist
def test_benchmark_json_has_every_field(reported_folder: Path) -> None:
    data = json.loads((reported_folder / "benchmark.json").read_text())
    assert {"cpu", "cores", "os", "interpreter", "versions"} <= set(data["machine"])
    assert data["settings"]["threads"] == [1, 2] and data["settings"]["interleaved"] and data["settings"]["runs"] == 30
    assert set(data["variants"]) == set(PRECISIONS)
    for variant in data["variants"].values():
        assert set(variant["threads"]) == {"1", "2"}
        for stats in variant["threads"].values():
            assert {"mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "images_per_s"} <= set(stats)
            assert stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
        assert 10 < variant["peak_memory_mb"] < 200, "an interpreter-only process"


@requires_fashion_mnist
def test_report_numbers_equal_drift_and_benchmark(reported_folder: Path) -> None:
    report = json.loads((reported_folder / "report.json").read_text())
    drift = json.loads((reported_folder / "drift.json").read_text())
    bench = json.loads((reported_folder / "benchmark.json").read_text())
    metadata = json.loads((reported_folder / "metadata.json").read_text())
    assert report["keras_accuracy"] == drift["keras"]["accuracy"]
    float32 = metadata["variants"]["float32"]["bytes"]
    for row in report["rows"]:
        precision = row["precision"]
        assert row["accuracy"] == drift["variants"][precision]["accuracy"]
        assert row["change_pp"] == drift["variants"][precision]["change_pp"]
        assert row["agreement"] == drift["variants"][precision]["agreement"]
        assert row["bytes"] == metadata["variants"][precision]["bytes"]
        assert row["size_ratio"] == pytest.approx(row["bytes"] / float32)
        for threads in ("1", "2"):
            stats = bench["variants"][precision]["threads"][threads]
            assert row["p50_ms"][threads] == stats["p50_ms"] and row["p99_ms"][threads] == stats["p99_ms"]
            reference = bench["variants"]["float32"]["threads"][threads]["p50_ms"]
            assert row["speedup"][threads] == pytest.approx(reference / stats["p50_ms"])
        assert row["peak_memory_mb"] == bench["variants"][precision]["peak_memory_mb"]
    assert report["recommended"] in PRECISIONS and metadata["recommended"] == report["recommended"]
    assert report["recommendation"].startswith(f"Ship model_{report['recommended']}.tflite")
    rows = list(csv.DictReader(io.StringIO((reported_folder / "report.csv").read_text())))
    assert [r["precision"] for r in rows] == list(PRECISIONS)
    assert float(rows[0]["p50_ms_1t"]) == bench["variants"]["float32"]["threads"]["1"]["p50_ms"]


@requires_fashion_mnist
def test_report_markdown_and_pictures(reported_folder: Path) -> None:
    text = (reported_folder / "report.md").read_text()
    assert text.startswith("# fmnist-cnn: which variant to ship"), "the title is the model's name from metadata.json"
    for picture in ("tradeoff.png", "confusion.png", "samples.png", "history.png"):
        assert f"]({picture})" in text
        with Image.open(reported_folder / picture) as image:
            assert image.size[0] >= 600 and image.size[1] >= 300
    assert "Compared with" in text and "How this was measured" in text


@requires_fashion_mnist
def test_stale_drift_numbers_are_not_reported(reported_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "stale"
    shutil.copytree(reported_folder, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["variants"]["int8"]["sha256"] = "0" * 64  # as if int8 had been converted again since evaluate
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "model_int8.tflite").unlink()
    built = build_report(ReportConfig(folder=folder))
    int8 = next(r for r in built.rows if r.precision == "int8")
    assert int8.accuracy is None and not int8.p50_ms
    assert any("re-run `edge-pipeline evaluate`" in note for note in built.notes)


def _row(precision: str, size: int, p50: float, change: float, agreement: float) -> ReportRow:
    return ReportRow(
        precision,
        f"model_{precision}.tflite",
        size,
        size / 1000,
        accuracy=0.9 + change / 100,
        change_pp=change,
        agreement=agreement,
        p50_ms={1: p50},
        within_budget=-change <= 1.0,
    )


def test_recommendation_rule() -> None:
    rows = [
        _row("float32", 1000, 1.0, 0.0, 1.0),
        _row("float16", 500, 1.0, 0.0, 0.999),
        _row("dynamic", 270, 0.33, 0.0, 0.995),
        _row("int8", 268, 0.32, -0.1, 0.990),
    ]
    assert recommend(rows, 1.0, 1)[0] == "dynamic", "equal size and speed: the more faithful one"
    rows[3] = _row("int8", 200, 0.2, -0.2, 0.99)
    assert recommend(rows, 1.0, 1)[0] == "int8", "clearly smaller and faster"
    rows[3] = _row("int8", 200, 0.2, -2.0, 0.95)
    pick, text = recommend(rows, 1.0, 1)
    assert pick == "dynamic" and "within your accuracy budget" in text
    pick, text = recommend([_row("int8", 200, 0.2, -3.0, 0.9)], 1.0, 1)
    assert pick is None and "No variant stays within the 1 pp" in text


def test_shipped_model_folder_is_complete_and_predicts_its_samples() -> None:
    from edge_runtime import Predictor
    from edge_runtime.folder.reader import read_metadata, sha256_file

    metadata = read_metadata(SHIPPED)
    assert set(metadata["variants"]) == set(VARIANTS)  # the shipped folder has the phone variants too
    for name, record in [*metadata["files"].items(), *((v["file"], v) for v in metadata["variants"].values())]:
        assert sha256_file(SHIPPED / name) == record["sha256"], name
    assert metadata["training"]["test_accuracy"] >= 0.92
    samples = sorted((SHIPPED / "samples").iterdir())
    assert len(samples) >= 5
    predictor = Predictor(SHIPPED)
    for sample in samples:
        expected = sample.stem.replace("-", " ").lower()
        assert predictor.predict(sample, top_k=1)[0].label.lower().replace("/", " ").replace("-", " ") == expected, (
            sample.name
        )
