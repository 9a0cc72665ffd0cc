"""Did the model learn? One verdict, from the test split's counts, for `train`, `run` and the report.

A model that did not learn is never recommended, and `run` stops after it (unless --continue). It has not
learned when either holds:

- **near chance**: its test accuracy is within `CHANCE_BAND` of the way from the majority-class rate (what
  always answering the test split's largest class scores) to perfect. With balanced classes the rate is
  1/classes, as before (3 classes: under 46.7%); with 17 of 31 test images in one class it is 54.8%, and
  a model must reach 63.9%.
- **collapsed**: one class takes at least `COLLAPSE_SHARE` of its predictions while its accuracy is not
  significantly above the majority-class rate: McNemar's exact test (`comparison.gate`'s, via `measure.paired`) on the
  paired test images, the model against always answering the largest class, one-sided p >= 0.05.

The collapse share is measured (benchmarks/learning_verdict.py, benchmarks/results/learning_verdict.md: the cnn at
64 px on 310- and 600-image Fashion-MNIST folders, 30 trainings from one step to 10 epochs): in the 12 models that
learned the most answered class took 42-71% of the answers; in the 18 that did not, 55-100%, 12 of them 84% or
more (those below were near chance anyway). Two of those 18 the old rule (1/classes only) let through, one of them
answering one class for all 31 test images at 51.61%: issue 31's case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .paired import SIGNIFICANCE, better_than

# A model whose accuracy is within this share of the way from the majority-class rate to perfect has not learned.
CHANCE_BAND = 0.2
# One class taking this share of the predictions, with accuracy within noise of the majority rate: collapse.
COLLAPSE_SHARE = 0.8


@dataclass(frozen=True)
class ClassCounts:
    """Per class of the test split: images, predictions of it, and right answers (a confusion matrix's sums)."""

    images: tuple[int, ...]
    predicted: tuple[int, ...]
    correct: tuple[int, ...]

    @classmethod
    def from_predictions(cls, true: Any, predicted: Any, classes: int) -> ClassCounts:
        true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
        return cls(
            tuple(int(v) for v in np.bincount(true, minlength=classes)[:classes]),
            tuple(int(v) for v in np.bincount(predicted, minlength=classes)[:classes]),
            tuple(int(v) for v in np.bincount(true[predicted == true], minlength=classes)[:classes]),
        )

    @classmethod
    def from_confusion(cls, matrix: Any) -> ClassCounts | None:
        """From a confusion matrix (rows: true class, columns: predicted); None when it is not one."""
        try:
            array = np.asarray(matrix, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            return None
        if array.ndim != 2 or array.shape[0] != array.shape[1] or array.size == 0 or (array < 0).any():
            return None
        return cls(
            tuple(int(v) for v in array.sum(axis=1)),
            tuple(int(v) for v in array.sum(axis=0)),
            tuple(int(v) for v in np.diag(array)),
        )

    @classmethod
    def from_record(cls, record: Any, classes: int) -> ClassCounts | None:
        """metadata.json's `training.test_counts` (untrusted): None unless three lists of counts that add up."""
        if not isinstance(record, dict):
            return None
        lists = [record.get(key) for key in ("images", "predicted", "correct")]
        if not all(isinstance(v, list) and len(v) == classes for v in lists):
            return None
        if not all(type(x) is int and x >= 0 for v in lists for x in v):  # type: ignore[union-attr]
            return None
        counts = cls(*(tuple(v) for v in lists))  # type: ignore[arg-type]
        fits = sum(counts.images) == sum(counts.predicted) and all(
            c <= min(i, p) for c, i, p in zip(counts.correct, counts.images, counts.predicted, strict=True)
        )
        return counts if fits else None

    def to_record(self) -> dict[str, list[int]]:
        return {"images": list(self.images), "predicted": list(self.predicted), "correct": list(self.correct)}

    @property
    def total(self) -> int:
        return sum(self.images)


@dataclass(frozen=True)
class Learning:
    """The verdict and the numbers it rests on."""

    accuracy: float
    classes: int
    images: int  # test images counted (0: only the accuracy is known)
    majority: int | None  # the largest class of the test split (None: counts unknown, classes assumed balanced)
    majority_rate: float  # what always answering it scores
    top: int | None = None  # the class predicted most
    top_share: float = 0.0  # its share of the predictions
    p_value: float | None = None  # McNemar, one-sided: no better than always answering the majority class
    balanced: bool = False  # every class has as many test images: none is "the largest"

    @property
    def near_chance(self) -> bool:
        return self.accuracy < self.majority_rate + (1.0 - self.majority_rate) * CHANCE_BAND - 1e-12

    @property
    def collapsed(self) -> bool:
        noise = self.p_value is not None and self.p_value >= SIGNIFICANCE
        return self.top is not None and self.top_share >= COLLAPSE_SHARE and noise

    @property
    def learned(self) -> bool:
        return not (self.near_chance or self.collapsed)

    def reason(self, labels: Sequence[str]) -> str:
        """Why it did not learn, as a clause: `collapsed: it answers 'circles' for 29 of 31 test images ...`."""

        def name(index: int | None) -> str:
            return repr(labels[index]) if index is not None and 0 <= index < len(labels) else f"class {index}"

        if self.majority is None:
            return f"near chance level ({self.accuracy:.2%} on {self.classes} classes, chance {self.majority_rate:.2%})"
        baseline = f"always answering {name(self.majority)}, the largest class"
        if self.balanced:
            baseline = f"always answering any one class (each has {self.images // max(self.classes, 1):,} of them)"
        if self.collapsed:
            count = round(self.top_share * self.images)
            return (
                f"collapsed: it answers {name(self.top)} for {count:,} of {self.images:,} test images "
                f"({self.top_share:.0%}), and its {self.accuracy:.2%} is not significantly above the "
                f"{self.majority_rate:.2%} of {baseline} (McNemar p={self.p_value:.2g})"
            )
        level = "below chance level" if self.accuracy < self.majority_rate else "near chance level"
        return (
            f"{level} ({self.accuracy:.2%} on {self.images:,} test images; {baseline}, scores {self.majority_rate:.2%})"
        )


def near_chance(accuracy: float, classes: int) -> bool:
    """True when a model is so close to guessing that no conversion of it is worth shipping (classes assumed
    balanced; `learning` with the test counts knows the majority-class rate and collapse too)."""
    return learning(accuracy, classes).near_chance


def learning(accuracy: float, classes: int, counts: ClassCounts | None = None) -> Learning:
    """The verdict on a model of `classes` classes with this test accuracy (and, when known, its test counts)."""
    classes = max(classes, 1)
    if counts is None or counts.total == 0 or len(counts.images) != classes:
        return Learning(accuracy, classes, 0, None, 1.0 / classes)
    total = counts.total
    majority = int(np.argmax(counts.images))
    top = int(np.argmax(counts.predicted))
    right = sum(counts.correct)
    only_model = right - counts.correct[majority]  # right answers on the other classes' images
    only_majority = counts.images[majority] - counts.correct[majority]  # majority images the model gets wrong
    share = counts.predicted[top] / total
    return Learning(
        accuracy=right / total,
        classes=classes,
        images=total,
        majority=majority,
        majority_rate=counts.images[majority] / total,
        top=top,
        top_share=share,
        p_value=better_than(only_model, only_majority) if share >= COLLAPSE_SHARE else None,
        balanced=len(set(counts.images)) == 1,
    )
