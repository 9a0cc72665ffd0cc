"""`compare`: real folders side by side, and the regression gate on a worse model and on a retrain.

The baseline is the session's trained cnn (`trained_folder`: 4,000 images, 3 epochs). A cnn of 1 epoch is a
real regression (the gate exits 1 naming accuracy); a retrain of the baseline's recipe is not (exit 0, its
latency re-timed here within noise). An mlp on the same test images stands beside them in the table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

import pipeline
from pipeline.comparison.gate import mcnemar_p
from pipeline.surface.cli import main
from tests.conftest import requires_fashion_mnist


def _made(folder: Path, **training: object) -> Path:
    pipeline.train(output=folder, progress=False, **training)
    pipeline.convert(folder, precision=["float32", "dynamic"], progress=False)
    pipeline.evaluate(folder, max_drop=100.0, progress=False)
    pipeline.benchmark(folder, threads="1", runs=40, rounds=4, progress=False)
    return folder


@pytest.fixture(scope="module")
def mlp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _made(tmp_path_factory.mktemp("compare") / "mlp", model="mlp", limit=2000, epochs=2)


def test_mcnemar_exact_p_values() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 0) == pytest.approx(1 / 32)  # all 5 discordant images favour the baseline
    assert mcnemar_p(3, 3) == pytest.approx(0.65625)
    assert math.isclose(
        mcnemar_p(30_000, 29_000), 0.5 * math.erfc((30_000 - 29_500 - 0.5) / math.sqrt(59_000 / 4) / 2**0.5)
    )


@pytest.mark.slow
@requires_fashion_mnist
def test_compare_cnn_and_mlp_writes_the_table_and_the_plot(
    trained_folder: Path, mlp_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "comparison"
    assert main(["compare", str(trained_folder), str(mlp_folder), "--output", str(out)]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert {f["name"] for f in data["folders"]} == {trained_folder.name, "mlp"}
    assert (
        data["folders"][0]["test_fingerprint"] == data["folders"][1]["test_fingerprint"]
    )  # the same 10,000 test images
    rows = {(r["folder"], r["variant"]): r for r in data["rows"]}
    assert rows[("mlp", "dynamic")]["accuracy"] > 0.5 and rows[(trained_folder.name, "float32")]["accuracy"] > 0.5
    assert any(r["on_front"] for r in data["rows"])
    [agreement] = data["agreements"]
    assert agreement["images"] == 10_000 and 0.5 < agreement["agree"] < 1.0
    with Image.open(out / "comparison.png") as picture:
        assert picture.size[0] > 800
    assert "| folder | variant |" in (out / "comparison.md").read_text()


@pytest.mark.slow
@requires_fashion_mnist
def test_the_gate_fails_a_worse_model_and_passes_a_retrain(
    trained_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worse = _made(tmp_path / "one-epoch", limit=4000, epochs=1)
    retrain = _made(tmp_path / "retrain", limit=4000, epochs=3)
    gate = ["--variant", "float32", "--runs", "200", "--rounds", "10"]

    summary = tmp_path / "summary.md"
    code = main(["compare", str(worse), "--baseline", str(trained_folder), *gate, "--output", str(tmp_path / "w"),
                 "--summary", str(summary)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err
    assert "one-epoch regresses against" in err and "accuracy" in err and "size" not in err
    assert "REGRESSION" in summary.read_text()

    code = main(["compare", str(retrain), "--baseline", str(trained_folder), *gate, "--json",
                 "--output", str(tmp_path / "r")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    verdict = json.loads(out)
    assert verdict["passed"] is True
    checks = {c["metric"]: c for c in verdict["gates"][0]["checks"]}
    assert checks["accuracy"]["regression"] is False and checks["size"]["regression"] is False
    assert checks["latency @1t (here)"]["regression"] is False
