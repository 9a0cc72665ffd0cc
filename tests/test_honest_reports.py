"""Issue 31 on real trainings: a model that collapsed onto its largest class stops `run` and is never shipped; on
31 test images the report says how sure each number is; `edge-runtime evaluate` on a labelled folder gives
`edge-pipeline evaluate`'s accuracy, here and on the emulated Raspberry Pi with both interpreters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.choices import Precision
from edge_runtime.cli import main as runtime_main
from pipeline.conversion.stage import ConvertConfig, convert
from pipeline.data.dataset import DataConfig
from pipeline.measure.evaluate import DriftResult, EvaluateConfig, evaluate
from pipeline.reporting.build import ReportConfig, write_report
from pipeline.surface.cli import main as pipeline_main
from pipeline.training.stage import HyperParams, TrainConfig, train
from tests.conftest import board, requires_fashion_mnist

pytestmark = [pytest.mark.slow, requires_fashion_mnist]
# Three Fashion-MNIST classes, imbalanced like a person's photos: 310 images, 31 of them the test split.
CLASSES = {1: ("trouser", 155), 7: ("sneaker", 93), 8: ("bag", 62)}


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory: pytest.TempPathFactory, fashion_arrays: tuple[np.ndarray, np.ndarray]) -> Path:
    """A cnn trained on the 310 photos (3 epochs: it learns), converted, and evaluated with --max-drop 2."""
    images, labels = fashion_arrays
    root = tmp_path_factory.mktemp("small")
    for index, (name, count) in CLASSES.items():
        (root / "photos" / name).mkdir(parents=True)
        for number, member in enumerate(np.flatnonzero(labels == index)[:count]):
            Image.fromarray(images[member][:, :, 0]).save(root / "photos" / name / f"{number:03d}.png")
    folder = root / "model"
    train(TrainConfig(data=DataConfig(data_path=root / "photos"), hparams=HyperParams(epochs=3), output=folder))
    convert(ConvertConfig(folder=folder, precisions=(Precision.FLOAT32, Precision.INT8, Precision.MIXED)))
    evaluate(EvaluateConfig(folder=folder, max_drop=2.0))
    return folder


def test_on_31_test_images_the_report_says_how_sure_it_is(small_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(small_folder, folder)
    drift = DriftResult.from_dict(json.loads((folder / "drift.json").read_text()), folder)
    assert drift.test_images == 31 and drift.max_drop == 2.0
    assert drift.verdict().endswith("within the budget of Keras: one of the 31 test images (3.23 pp), as --max-drop 2 "
                                    "pp is finer")  # fmt: skip
    report = write_report(ReportConfig(folder=folder, samples=0))  # no --max-drop: the one evaluate used
    text = (folder / "report.md").read_text()
    assert report.max_drop == 2.0 and "(budget 2 pp)" in report.recommendation and "budget 1 pp" not in text
    assert report.recommendation.startswith("Ship ") and "of test images" in report.recommendation
    assert "On 31 test images (fewer than 1,000) one image is 3.23 pp: accuracy and agreement show their 95%" in text
    table = [line for line in text.splitlines() if line.startswith("| float32")]
    assert len(table) == 1 and "% (" in table[0]  # accuracy with its interval
    for row in report.rows:
        assert row.accuracy_interval is not None and row.accuracy_interval[0] < row.accuracy < row.accuracy_interval[1]
        assert row.paired is not None and (row.change_pp == 0) == (row.paired[0] == row.paired[1])
        assert row.within_noise == (row.change_pp != 0 and row.change_p >= 0.05)  # type: ignore[operator]
    changed = any(v.changed for v in drift.variants)
    assert ("Why images change class" in text) == changed
    mixed = json.loads((folder / "metadata.json").read_text())["variants"]["mixed"]["mixed"]
    assert mixed["selection_images"] < 100
    if mixed["selection_agreement"] >= 99.5:  # all agree, yet 28 images cannot show 99.5%: said, not "NOT meet"
        assert "NOT meet" not in text and "Too few images to show it: the search asks the Wilson 95% lower" in text
    other = write_report(ReportConfig(folder=folder, samples=0, max_drop=1.0))
    assert other.max_drop == 1.0 and "`evaluate` gated with 2 pp (drift.json)" in (folder / "report.md").read_text()


def _labelled_test_split(folder: Path, target: Path) -> Path:
    """The test split's files in class folders, as a person would copy them to a device."""
    split = json.loads((folder / "split.json").read_text())
    source = Path(json.loads((folder / "metadata.json").read_text())["dataset"]["source"])
    for name in split["test"]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, target / name)
    return target


def test_edge_runtime_evaluate_equals_edge_pipeline_evaluate(
    small_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labelled = _labelled_test_split(small_folder, tmp_path / "test-split")
    drift = json.loads((small_folder / "drift.json").read_text())["variants"]
    for precision, measured in drift.items():
        assert runtime_main(["evaluate", str(small_folder / measured["file"]), str(labelled), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["images"] == 31 and result["accuracy"] == measured["accuracy"], precision
        assert result["confusion"]["counts"] == measured["confusion"], precision


def _emulator() -> object:
    from pipeline.devices.emulator import EmulatorError, build, missing_tools

    if missing_tools() and not os.environ.get("CI"):
        pytest.skip(f"the emulated Pi needs {', '.join(missing_tools())}")
    try:
        return build(log=lambda line: None)
    except EmulatorError as error:
        pytest.fail(f"emulated Pi could not be built: {error}")


def test_edge_runtime_evaluate_on_the_emulated_pi_with_both_interpreters(small_folder: Path, tmp_path: Path) -> None:
    from pipeline.devices.emulator import INTERPRETERS

    emulator = _emulator()
    device = board(tmp_path, small_folder)
    _labelled_test_split(small_folder, device / "photos")
    drift = json.loads((small_folder / "drift.json").read_text())["variants"]
    for interpreter in INTERPRETERS:
        for precision in ("float32", "int8"):
            done = subprocess.run(
                [str(emulator.python(interpreter)), "-m", "edge_runtime", "evaluate",  # type: ignore[attr-defined]
                 f"model/{drift[precision]['file']}", "photos", "--json"],
                cwd=device, capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            assert done.returncode == 0, (interpreter, precision, done.stderr[-1500:])
            result = json.loads(done.stdout)
            assert result["backend"].startswith(interpreter), result["backend"]
            assert result["accuracy"] == drift[precision]["accuracy"], (interpreter, precision)


def test_run_stops_after_a_model_that_collapsed_onto_its_largest_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Acceptance: noise in 3 imbalanced class folders leaves nothing to learn but the largest class."""
    rng = np.random.default_rng(0)
    for name, count in (("alpha", 120), ("beta", 30), ("gamma", 30)):
        (tmp_path / "noise" / name).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                tmp_path / "noise" / name / f"{index}.png"
            )
    folder = tmp_path / "model"
    argv = ["run", "--data", str(tmp_path / "noise"), "--epochs", "2", "--output", str(folder)]
    assert pipeline_main(argv) == 1
    err = capsys.readouterr().err
    counts = json.loads((folder / "metadata.json").read_text())["training"]["test_counts"]
    assert counts["images"][0] == max(counts["images"]) and counts["predicted"][0] >= 0.9 * sum(counts["images"])
    assert "the model did not learn, it is collapsed: it answers 'alpha' for" in err, err
    assert "always answering 'alpha', the largest class" in err and "pass --continue to go on anyway" in err
    assert not any(p.suffix == ".tflite" for p in folder.iterdir())
    quick = ["--precision", "float32", "--threads", "1", "--runs", "10", "--rounds", "2", "--samples", "0"]
    assert pipeline_main([*argv, "--continue", *quick]) == 0
    capsys.readouterr()
    report = (folder / "report.md").read_text()
    assert "**Do not ship: the Keras model is collapsed: it answers 'alpha'" in report and "Ship model" not in report
    assert json.loads((folder / "metadata.json").read_text()).get("recommended") is None
