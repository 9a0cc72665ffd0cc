"""Import's checks on what a source answers, with scorers written here (the check is under test, not a model):
the input-scale probe on a test split grouped by class, and --labels checked in time linear in their number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pipeline
from edge_runtime.folder.reader import InputSpec
from pipeline.importing.graphs import Preprocessing
from pipeline.importing.measure import SCALE_PROBE, Scorer, measure, refuse_a_wrong_scale


def _reads_0_to_1(pre: Preprocessing) -> Scorer:
    """A two-class 'model' trained on [0, 1]: bright images are class 1 once scaled as it expects."""

    def score(pixels: np.ndarray) -> np.ndarray:
        bright = (((pixels - pre.mean) / pre.std).mean(axis=(1, 2, 3)) > 0.5).astype(np.float64)
        return np.stack([1 - bright, bright], axis=1)

    return score


def test_the_scale_probe_spreads_over_classes_a_split_grouped_by_class() -> None:
    """2 x 1,100 test images in class order: the first SCALE_PROBE were all class 0, where raw pixels and [0, 1]
    answer alike, and the wrong scale passed."""
    spec, true = InputSpec(4, 4, 1, "grayscale"), np.repeat([0, 1], 1100)
    images = np.broadcast_to(np.where(true == 1, 200.0, 50.0)[:, None, None, None], (len(true), 4, 4, 1))
    stated = Preprocessing(0.0, 1.0, False)  # raw pixels: every image looks bright
    measured = measure(_reads_0_to_1(stated), images.astype(np.float32), true, spec)
    assert measured.accuracy == 0.5 and len(true) > SCALE_PROBE
    with pytest.raises(pipeline.UsageError, match=r"50\.00% top-1 on 1,000 test images fed raw pixels .* fed \[0, 1\]"):
        refuse_a_wrong_scale(_reads_0_to_1, stated, measured, images, true, spec, 2, "mine.keras")


def test_labels_given_twice_are_found_in_linear_time(tmp_path: Path) -> None:
    """100,000 labels (the reader's ceiling) against 2 classes: counted once each (list.count took ~95 s)."""
    from pipeline.importing.stage import ImportConfig, checked_labels

    (tmp_path / "labels.txt").write_text("".join(f"class{index}\n" for index in range(99_999)) + "class0\n")
    config = ImportConfig(source=tmp_path / "mine.keras", output=tmp_path / "out", labels=tmp_path / "labels.txt")
    with pytest.raises(pipeline.UsageError, match=r"\['class0'\] appear more than once"):
        checked_labels(config, ["class0", "class1"])
