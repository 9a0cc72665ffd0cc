"""predict says once when its images are far from the training images (colour photos for a grayscale model)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from edge_runtime import Predictor
from edge_runtime.input_check import TrainingImages
from tests.conftest import ROOT

SAMPLES = ROOT / "models" / "fashion-mnist-cnn" / "samples"


def _photos(folder: Path) -> list[Path]:
    """640x480 colour photos of a bag on a light table, as a phone takes them."""
    paths = []
    for index, colour in enumerate([(150, 90, 40), (200, 30, 60), (40, 120, 200)]):
        image = Image.new("RGB", (640, 480), (245, 245, 240))
        draw = ImageDraw.Draw(image)
        draw.rectangle([200, 150, 440, 400], fill=colour)
        draw.arc([260, 60, 380, 220], 180, 360, fill=colour, width=18)
        paths.append(folder / f"photo{index}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def test_training_records_what_its_images_look_like(trained_folder: Path) -> None:
    predictor = Predictor(trained_folder)
    training = predictor.input_watch.training
    assert (training.height, training.width, training.channels, training.colour) == (28, 28, 1, 0.0)
    assert 50 < training.brightness < 100 and training.spread > 10  # Fashion-MNIST: light things on black


def test_colour_photos_for_a_grayscale_model_get_one_line(trained_folder: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "predict", str(trained_folder), *map(str, _photos(tmp_path))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if ": note: " in line]
    assert len(notes) == 1, done.stderr
    assert "colour photos (it learned grayscale images)" in notes[0]
    assert "x the size of its training images (28x28)" in notes[0]
    assert "brighter than its training images" in notes[0] and "try --invert" in notes[0]


def test_images_like_the_training_data_get_no_note(trained_folder: Path) -> None:
    predictor = Predictor(trained_folder)
    for path in sorted(SAMPLES.iterdir()):
        predictor.preprocess(path)
    assert predictor.input_note() is None


@pytest.mark.parametrize(
    "stats",
    [
        None,
        "text",
        {"native": {"height": float("nan"), "width": 28, "channels": 1}, "brightness": {"mean": 70, "std": 30}},
        {"native": {"height": 28, "width": 28, "channels": 1}, "brightness": {"mean": "70", "std": 30}},
        {"native": {"height": 28, "width": 28, "channels": 9}, "brightness": {"mean": 70, "std": 30}},
        {"native": [], "brightness": {}},
    ],
)
def test_a_malformed_record_means_no_check_and_no_crash(stats: object) -> None:
    assert TrainingImages.from_record({"image_stats": stats}) is None
