"""Accuracy drift of every TFLite variant against the folder's reference (Keras, or an imported source): `evaluate`.

The whole test split goes through the Keras model and through each variant with
edge_runtime's Predictor (batched invoke()), so what is measured is what ships.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.predictor import Predictor

from ..choices import Precision
from ..data.dataset import DataConfig, load_dataset
from ..data.fingerprint import test_fingerprint
from ..data.tf_pipeline import model_input_array
from ..errors import DataError, GateFailed, UsageError
from ..folder import DRIFT_JSON, MB, PREDICTIONS_JSON, FolderStore, now
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from .intervals import interval_text, share_interval
from .reference import Reference, load_reference

CHUNK = 1000
DEFAULT_MAX_DROP = 1.0  # percentage points of top-1 accuracy a variant may lose against Keras
MAX_CONFUSION_CLASSES = 100
BORDERLINE_MARGIN = 0.1  # Keras' own top-2 probabilities this close: a coin toss for any precision


# --- verdicts, shared by the gate, the console and the report --------------------------------------


def allowed_drop(max_drop: float, test_images: int) -> float:
    """The accuracy budget the gate applies: --max-drop, but a positive one never finer than one test image.

    A budget between 0 and one image can only be met by losing nothing, the same as --max-drop 0; so
    a positive budget that small is read as one image (60 test images: 1 pp -> 1.67 pp), and 0 stays 0.
    """
    if not test_images or max_drop <= 0:
        return max_drop
    return max(max_drop, 100.0 / test_images)


def within_budget(change_pp: float, max_drop: float, test_images: int) -> bool:
    """True when a variant lost no more top-1 accuracy against Keras than the gate allows."""
    return -change_pp <= allowed_drop(max_drop, test_images) + 1e-9


def resolution_note(max_drop: float, test_images: int) -> str | None:
    """Say so when --max-drop is finer than one test image can measure."""
    if not test_images or max_drop <= 0 or 100.0 / test_images <= max_drop:
        return None
    return (
        f"--max-drop {max_drop:g} pp is finer than one of the {test_images:,} test images ({100.0 / test_images:.2f} "
        "pp "
        f"each): the gate allows one image"
    )


def disagreement_note(
    precision: str, changed: int, ties: int, margin: float | None, keras_margin: float | None, reference: str = "Keras"
) -> str | None:
    """Why a variant changes the class of some images: borderline calls (ties, small Keras margins) or not."""
    if not changed or margin is None:
        return None
    tied = f", {ties:,} of them exact ties in {precision}'s output" if ties else ""
    typical = f" ({keras_margin:.2f} over all images)" if keras_margin is not None else ""
    verdict = (
        "borderline images, not a broken conversion"
        if margin < BORDERLINE_MARGIN
        else f"images {reference} is sure of: look at the conversion"
    )
    return (
        f"{precision}: {changed:,} images change class; {reference}'s own top-2 margin on them: median "
        f"{margin:.3f}{typical}{tied}; {verdict}"
    )


@dataclass(frozen=True)
class EvaluateConfig:
    """Which folder and variants to check, and how much accuracy may be lost."""

    folder: Path
    precisions: tuple[Precision, ...] | None = None  # None: every variant in metadata.json
    max_drop: float = DEFAULT_MAX_DROP
    threads: int | None = None
    data_path: Path | None = None
    data_dir: Path | None = None


@dataclass(frozen=True)
class ClassDrift:
    label: str
    keras_accuracy: float
    accuracy: float
    change_pp: float


@dataclass
class VariantDrift:
    """How one variant compares with Keras on the test split."""

    precision: str
    file: str
    sha256: str
    accuracy: float
    change_pp: float
    agreement: float
    mean_abs_diff: float
    max_abs_diff: float
    per_class: list[ClassDrift]
    seconds: float
    images_per_s: float
    passed: bool
    confusion: list[list[int]] | None = None
    # The images whose top-1 differs from Keras, and why: exact ties in the variant's
    # output, and how close Keras' own top two were (median of top-1 minus top-2).
    changed: int = 0
    changed_ties: int = 0
    changed_keras_margin: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_class"] = [asdict(c) for c in self.per_class]
        return data

    @classmethod
    def from_dict(cls, precision: str, data: dict[str, Any]) -> VariantDrift:
        values = {name: data[name] for name in cls.__dataclass_fields__ if name in data and name != "precision"}
        values["per_class"] = [ClassDrift(**c) for c in data.get("per_class", [])]
        return cls(precision=precision, **values)


@dataclass(repr=False)
class DriftResult(Shown):
    """drift.json: Keras accuracy and each variant's drift, plus the gate's verdict; prints as a table."""

    folder: Path
    test_images: int
    keras_accuracy: float
    keras_confusion: list[list[int]] | None
    keras_seconds: float
    max_drop: float
    keras_margin: float | None = None  # median top-1 minus top-2 probability over all test images
    test_fingerprint: str | None = None  # which test images, in which order (pipeline.data.fingerprint)
    variants: list[VariantDrift] = field(default_factory=list)
    reference: str = "Keras"  # what the variants are measured against (an imported folder: its source)

    @property
    def failed(self) -> list[VariantDrift]:
        return [v for v in self.variants if not v.passed]

    @property
    def allowed_drop(self) -> float:
        return allowed_drop(self.max_drop, self.test_images)

    @property
    def resolution(self) -> str | None:
        """Says so when --max-drop is finer than one test image."""
        return resolution_note(self.max_drop, self.test_images)

    def summary(self) -> str:
        verdict = f"{len(self.failed)} over budget" if self.failed else "all within budget"
        return f"drift of {len(self.variants)} variants on {self.test_images:,} test images: {verdict}"

    def table(self) -> Table:
        rows = []
        for v in self.variants:
            worst = v.per_class[0] if v.per_class else None
            rows.append(
                [
                    v.precision,
                    f"{v.accuracy:.2%}{interval_text(share_interval(v.accuracy, self.test_images))}",
                    f"{v.change_pp:+.2f}",
                    f"{v.agreement:.2%}{interval_text(share_interval(v.agreement, self.test_images))}",
                    f"{v.mean_abs_diff:.5f}",
                    f"{worst.label} {worst.change_pp:+.1f}" if worst else "-",
                    f"{v.images_per_s:,.0f}",
                    "pass" if v.passed else "FAIL",
                ]
            )
        return Table(
            f"accuracy drift on {self.test_images:,} test images ({self.reference} {self.keras_accuracy:.2%}); budget "
            f"{self.max_drop:g} pp",
            [
                "variant",
                "accuracy",
                f"vs {self.reference.split(' ')[0]} (pp)",
                "agreement",
                "mean |dp|",
                "worst class (pp)",
                "images/s",
                "verdict",
            ],
            rows,
            [*([self.resolution] if self.resolution else []), *self.disagreements(), self.verdict()],
        )

    def verdict(self) -> str:
        """One line: every variant within the budget, or which lost more."""
        if not self.failed:
            count = len(self.variants)
            which = "the variant is" if count == 1 else f"all {count} variants are"
            if self.allowed_drop > self.max_drop:  # the budget is one test image: say so, not 3.226 pp
                one = f"one of the {self.test_images:,} test images ({self.allowed_drop:.2f} pp)"
                return (
                    f"{which} within the budget of {self.reference}: {one}, as --max-drop {self.max_drop:g} pp is finer"
                )
            return f"{which} within {self.max_drop:g} pp of {self.reference}"
        return self.gate_message()

    def gate_message(self) -> str:
        lost = ", ".join(f"{d.precision} {d.change_pp:+.2f} pp" for d in self.failed)
        finest = (
            f" ({self.allowed_drop:.2f} pp: one of the {self.test_images:,} test images is the least it can measure)"
            if self.allowed_drop > self.max_drop
            else ""
        )
        return (
            f"accuracy gate failed: {lost} against {self.reference}, more than --max-drop {self.max_drop:g} pp{finest} "
            f"(see {self.folder}/drift.json)"
        )

    def gate(self) -> None:
        """Raise GateFailed (the CLI's exit 1) when a variant lost more accuracy than the budget allows."""
        if self.failed:
            raise GateFailed(self.gate_message())

    def disagreements(self) -> list[str]:
        """Why each variant changes the class of some images (borderline calls or not)."""
        found = [
            disagreement_note(
                v.precision, v.changed, v.changed_ties, v.changed_keras_margin, self.keras_margin, self.reference
            )
            for v in self.variants
        ]
        return [note for note in found if note]

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": now(),
            "test_images": self.test_images,
            "test_fingerprint": self.test_fingerprint,
            "max_drop_pp": self.max_drop,
            "allowed_drop_pp": self.allowed_drop,
            "reference": self.reference,
            "keras": {
                "accuracy": self.keras_accuracy,
                "seconds": self.keras_seconds,
                "median_margin": self.keras_margin,
                "confusion": self.keras_confusion,
            },
            "variants": {v.precision: v.to_dict() for v in self.variants},
            "failed": [v.precision for v in self.failed],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> DriftResult:
        """drift.json read back; the inverse of to_dict (created_at and the derived fields aside)."""
        keras = data.get("keras", {})
        return cls(
            folder=folder,
            test_images=int(data.get("test_images") or 0),
            keras_accuracy=keras.get("accuracy"),
            keras_confusion=keras.get("confusion"),
            keras_seconds=keras.get("seconds", 0.0),
            max_drop=float(data.get("max_drop_pp", DEFAULT_MAX_DROP)),
            test_fingerprint=data.get("test_fingerprint") if isinstance(data.get("test_fingerprint"), str) else None,
            keras_margin=keras.get("median_margin"),
            variants=[VariantDrift.from_dict(p, v) for p, v in data.get("variants", {}).items()],
            reference=str(data.get("reference") or "Keras"),
        )


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    counts = np.bincount(true, minlength=classes)
    right = np.bincount(true[predicted == true], minlength=classes)
    return np.divide(right, counts, out=np.zeros(classes), where=counts > 0)


def top2_margin(scores: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 score of each row (how close the call was)."""
    if scores.shape[1] < 2:
        return np.ones(len(scores), dtype=scores.dtype)
    ordered = np.sort(scores, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def compare(labels: list[str], true: np.ndarray, keras_scores: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Accuracy, change vs Keras, agreement, probability differences, per-class change."""
    classes = len(labels)
    keras_top, top = keras_scores.argmax(axis=1), scores.argmax(axis=1)
    accuracy = float((top == true).mean())
    keras_accuracy = float((keras_top == true).mean())
    keras_per_class = per_class_accuracy(true, keras_top, classes)
    variant_per_class = per_class_accuracy(true, top, classes)
    per_class = sorted(
        (
            ClassDrift(
                labels[i],
                float(keras_per_class[i]),
                float(variant_per_class[i]),
                float((variant_per_class[i] - keras_per_class[i]) * 100),
            )
            for i in range(classes)
        ),
        key=lambda c: (c.change_pp, c.label),
    )
    difference = np.abs(scores - keras_scores)
    changed = top != keras_top
    return {
        "accuracy": accuracy,
        "change_pp": (accuracy - keras_accuracy) * 100,
        "agreement": float((top == keras_top).mean()),
        "mean_abs_diff": float(difference.mean()),
        "max_abs_diff": float(difference.max()),
        "per_class": per_class,
        "confusion": confusion_matrix(true, top, classes).tolist() if classes <= MAX_CONFUSION_CLASSES else None,
        "changed": int(changed.sum()),
        "changed_ties": int((top2_margin(scores[changed]) == 0).sum()),
        "changed_keras_margin": float(np.median(top2_margin(keras_scores[changed]))) if changed.any() else None,
    }


def _test_split(folder: FolderStore, metadata: Any, config: EvaluateConfig, reporter: Reporter) -> Any:
    try:
        data = DataConfig.from_record(metadata.dataset, config.data_path, config.data_dir)
        dataset = load_dataset(data, metadata.input, recorded=folder.recorded_split(metadata))
    except (DataError, UsageError) as error:
        raise DataError(
            f"evaluation needs the test split: {error} (pass --data or --data-dir if the data moved)"
        ) from None
    if len(dataset.test) == 0:
        raise DataError(f"{dataset.name}: the test split is empty")
    if dataset.changes:
        reporter.status(dataset.changes)
    reporter.status(f"evaluating on {len(dataset.test):,} test images of {dataset.name}")
    return dataset


def _scores(
    reference: Reference, paths: dict[str, Path], test: Any, spec: Any, threads: int, reporter: Reporter
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """The reference's and each variant's scores over the test split, in chunks, with the seconds each took."""
    predictors = {p: Predictor(path, threads=threads, verify=False) for p, path in paths.items()}  # verified above
    keras_scores: list[Any] = []
    variant_scores: dict[str, list[Any]] = {p: [] for p in paths}
    seconds = {"keras": 0.0, **{p: 0.0 for p in paths}}
    with reporter.task("evaluating", total=len(test)) as task:
        for start in range(0, len(test), CHUNK):
            chunk = test.images[start : start + CHUNK]
            pixels = {spec: model_input_array(chunk, spec)}  # and each variant's own input (mediapipe: RGB)
            began = time.perf_counter()
            keras_scores.append(reference.scores(pixels[spec]))
            seconds["keras"] += time.perf_counter() - began
            for precision, predictor in predictors.items():
                if predictor.spec not in pixels:
                    pixels[predictor.spec] = model_input_array(chunk, predictor.spec)
                began = time.perf_counter()
                variant_scores[precision].append(predictor.scores(pixels[predictor.spec]))
                seconds[precision] += time.perf_counter() - began
            task.update(min(start + CHUNK, len(test)))
    return np.concatenate(keras_scores), {p: np.concatenate(v) for p, v in variant_scores.items()}, seconds


def evaluate(config: EvaluateConfig, reporter: Reporter | None = None) -> DriftResult:
    """Run Keras and every variant over the test split; write drift.json; return the result.

    The caller decides what a failed gate means (the CLI exits 1).
    """
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.folder)
    with folder.writing("evaluate"):
        return _evaluate(folder, config, reporter)


def _evaluate(folder: FolderStore, config: EvaluateConfig, reporter: Reporter) -> DriftResult:
    metadata = folder.load()
    folder.check_room(8 * MB, "evaluate")
    paths = folder.verified_variants(metadata, config.precisions, "evaluate")
    threads = config.threads or os.cpu_count() or 1
    against = load_reference(folder, metadata, threads)
    dataset = _test_split(folder, metadata, config, reporter)
    test = dataset.test
    reference, variant_scores, seconds = _scores(against, paths, test, metadata.input, threads, reporter)
    true, keras_top, classes = test.labels, reference.argmax(axis=1), len(metadata.labels)
    result = DriftResult(
        folder=folder.path,
        test_images=len(test),
        keras_accuracy=float((keras_top == true).mean()),
        keras_confusion=confusion_matrix(true, keras_top, classes).tolist()
        if classes <= MAX_CONFUSION_CLASSES
        else None,
        keras_seconds=round(seconds["keras"], 3),
        max_drop=config.max_drop,
        keras_margin=float(np.median(top2_margin(reference))),
        test_fingerprint=test_fingerprint(dataset),
        reference=against.name,
    )
    for precision, scores in variant_scores.items():
        numbers = compare(metadata.labels, true, reference, scores)
        variant, spent = metadata.variants[precision], seconds[precision]
        result.variants.append(
            VariantDrift(
                precision=precision,
                file=variant.file,
                sha256=variant.sha256,
                seconds=round(spent, 3),
                images_per_s=len(test) / spent if spent else 0.0,
                passed=within_budget(numbers["change_pp"], config.max_drop, len(test)),
                **numbers,
            )
        )
    predictions = {
        "test_fingerprint": result.test_fingerprint,
        "labels": [int(x) for x in true],
        "keras": [int(x) for x in keras_top],
        "variants": {p: [int(x) for x in scores.argmax(axis=1)] for p, scores in variant_scores.items()},
    }
    # results from devices (--on HOST) stay
    folder.commit_json(DRIFT_JSON, result.to_dict(), metadata, keep=("devices",), also={PREDICTIONS_JSON: predictions})
    return result
