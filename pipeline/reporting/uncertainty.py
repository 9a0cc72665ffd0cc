"""How sure the report's numbers are, when the test set is small (under `intervals.SMALL_TEST_SET` images).

Accuracy and agreement get their 95% Wilson interval, and each variant's change against Keras McNemar's exact
test on the images only one of the two gets right (from predictions.json, the paired answers `evaluate` wrote):
a change it does not find (p >= 0.05) is within noise, and the report says so. On a large test set the report
reads as before: every interval would be within a point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..folder import PREDICTIONS_JSON, FolderStore, Metadata
from ..measure.evaluate import DriftResult
from ..measure.intervals import SMALL_TEST_SET, is_small, share_interval
from ..measure.paired import SIGNIFICANCE
from ..store.commits import read_results_json
from .recommend import ReportRow


def paired_answers(folder: FolderStore, metadata: Metadata, drift: DriftResult) -> dict[str, tuple[int, int]]:
    """Per variant: (images only Keras gets right, images only the variant gets right), from predictions.json when
    it is of the evaluation drift.json records; {} when it is missing, of other images or malformed."""
    if PREDICTIONS_JSON not in metadata.files or not folder.file(PREDICTIONS_JSON).is_file():
        return {}
    try:
        data = read_results_json(folder.verified(PREDICTIONS_JSON, metadata), PREDICTIONS_JSON)
    except Exception:  # noqa: BLE001 - a damaged optional file: the report goes on without the paired test
        return {}
    if not isinstance(data, dict) or data.get("test_fingerprint") != drift.test_fingerprint:
        return {}
    labels, keras = _column(data.get("labels"), drift.test_images), _column(data.get("keras"), drift.test_images)
    if labels is None or keras is None:
        return {}
    found = {}
    for name, values in dict(data.get("variants") or {}).items():
        answers = _column(values, drift.test_images)
        if answers is not None:
            keras_right, right = keras == labels, answers == labels
            found[str(name)] = (int((keras_right & ~right).sum()), int((right & ~keras_right).sum()))
    return found


def _column(values: Any, size: int) -> np.ndarray | None:
    if not isinstance(values, list) or len(values) != size or not all(type(v) is int for v in values):
        return None
    return np.asarray(values, dtype=np.int64)


def annotate(rows: list[ReportRow], drift: DriftResult | None, pairs: dict[str, tuple[int, int]]) -> None:
    """Intervals and paired counts on each measured row, when the test set is small."""
    if drift is None or not is_small(drift.test_images):
        return
    for row in rows:
        if row.accuracy is None or row.agreement is None:
            continue
        row.accuracy_interval = share_interval(row.accuracy, drift.test_images)
        row.agreement_interval = share_interval(row.agreement, drift.test_images)
        row.paired = pairs.get(row.precision)


def legend(test_images: int | None) -> str | None:
    """One line under the variant table saying how to read it on a small test set."""
    if not is_small(test_images):
        return None
    return (
        f"On {test_images:,} test images (fewer than {SMALL_TEST_SET:,}) one image is {100 / test_images:.2f} pp: "  # type: ignore[operator]
        "accuracy and agreement show their 95% interval (Wilson), and a change against Keras marked n.s. is not "
        f"significant (McNemar's exact test on the images only one of the two gets right, p >= {SIGNIFICANCE:g}): "
        "within noise."
    )
