"""Day two's smaller promises: data warnings when training, and `run` stopping after a training that did not learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline
from pipeline.data.dataset import class_warnings
from pipeline.progress import SilentReporter
from pipeline.surface.cli import main
from tests.conftest import write_image_folder


def test_few_images_and_look_alike_class_names_are_warned_about() -> None:
    lines = class_warnings(["Tasche", "Tasche 👜", "Hut", "hut"], [3, 60, 60, 58])
    assert any("class 'Tasche' has 3 usable image(s), against 60" in line for line in lines)
    assert any("'Tasche' and 'Tasche 👜' differ only in case, spaces, punctuation or symbols" in line for line in lines)
    assert any("'Hut' and 'hut'" in line for line in lines)
    assert class_warnings(["a", "b"], [50, 60]) == []


@pytest.mark.slow
def test_a_stray_class_folder_is_named_when_training(
    tmp_path: Path, fashion_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = fashion_arrays
    root = write_image_folder(tmp_path / "photos", images, labels, {8: "Tasche 👜", 1: "Hose"}, per_class=60)
    write_image_folder(tmp_path / "stray", images, labels, {8: "Tasche"}, per_class=3)
    (tmp_path / "stray" / "Tasche").rename(root / "Tasche")
    reporter = SilentReporter()
    pipeline.train(data=root, epochs=1, output=tmp_path / "model", reporter=reporter)
    warnings = [m for m in reporter.messages if m.startswith("warning:")]
    assert any("class 'Tasche' has 3 usable image(s)" in m for m in warnings), reporter.messages
    assert any("'Tasche' and 'Tasche 👜' differ only" in m for m in warnings), reporter.messages


@pytest.mark.slow
def test_run_stops_after_a_training_that_did_not_learn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):  # noise: nothing to learn, so any model ends at chance
        (tmp_path / "noise" / name).mkdir(parents=True)
        for index in range(40):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                tmp_path / "noise" / name / f"{index}.png"
            )
    argv = ["run", "--data", str(tmp_path / "noise"), "--epochs", "1", "--output", str(tmp_path / "model")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the model did not learn" in err and "pass --continue to go on anyway" in err
    assert not any(p.name.endswith(".tflite") for p in (tmp_path / "model").iterdir())  # nothing converted
