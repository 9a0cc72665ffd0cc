"""What convert measures about its integer variants, written as quantization.json.

- the images: calibration (class-balanced training images), selection (validation images the
  mixed search decides on) and the test split (reported on, never chosen on);
- per-layer error of the int8 variant against float32 (`pipeline.conversion.layer_error`);
- the mixed search's candidates and what each scored;
- a calibration sweep: int8 agreement with Keras on the test split for each --calibration-samples
  count, drawn with several seeds, so calibration noise is visible next to the gaps it could explain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from edge_runtime.choices import Calibration, Precision, Route
from edge_runtime.normalization import normalized

from ..data.dataset import Dataset, balanced_indices
from ..data.tf_pipeline import model_input_array
from ..progress import Reporter
from .converter import Conversion, Converter, Recipe
from .layer_error import LayerError
from .mixed import top1

CHUNK = 1000
SWEEP_SEEDS = 3  # each --calibration-samples count of a sweep is drawn this many times


@dataclass
class QuantData:
    """The images integer conversion calibrates, chooses and reports on, prepared as the model reads them."""

    dataset: Dataset
    spec: Any  # InputSpec
    seed: int
    counts: tuple[int, ...]  # calibration sizes; the variants use the largest
    selection_samples: int

    def values(self, images: np.ndarray) -> np.ndarray:
        """What the model takes for these images: raw pixels, normalised as the folder's input says (an imported
        .tflite takes `(pixel - mean) / std`; models with the preprocessing in the graph, the pixels)."""
        pixels = model_input_array(images, self.spec)
        return pixels if self.spec.raw else normalized(pixels, self.spec.mean, self.spec.std)

    def sample(self, count: int, seed: int) -> np.ndarray:
        chosen = balanced_indices(self.dataset.train.labels, count, seed=seed)
        return self.values(self.dataset.train.images[chosen])

    @cached_property
    def calibration(self) -> np.ndarray:
        return self.sample(max(self.counts), self.seed)

    @cached_property
    def selection(self) -> np.ndarray:
        validation = self.dataset.validation
        count = min(self.selection_samples, len(validation))
        return self.values(validation.images[balanced_indices(validation.labels, count, self.seed)])

    def test_top1(self, predict: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """`predict` (a batch of model input -> class scores or classes) over the test split, in chunks."""
        images, out = self.dataset.test.images, []
        for start in range(0, len(images), CHUNK):
            result = predict(self.values(images[start : start + CHUNK]))
            out.append(result.argmax(axis=1) if result.ndim == 2 else result)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def agreement(content: bytes, data: QuantData, keras_top1: np.ndarray) -> float:
    """Percent of test images where the TFLite model's top-1 class equals Keras'."""
    if not len(keras_top1):
        return float("nan")
    return 100.0 * float((data.test_top1(lambda batch: top1(content, batch)) == keras_top1).mean())


@dataclass
class QuantizationReport:
    """quantization.json: how int8 was calibrated and how far each layer is from float."""

    calibration: str
    calibration_samples: int
    layers: list[LayerError] = field(default_factory=list)
    mixed: list[dict[str, Any]] = field(default_factory=list)  # every candidate the mixed search scored
    sweep: list[dict[str, Any]] = field(default_factory=list)  # {samples, seed, agreement}

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration,
            "calibration_samples": self.calibration_samples,
            "layers": [layer.to_dict() for layer in self.layers],
            "mixed_candidates": self.mixed,
            "sweep": self.sweep,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantizationReport:
        return cls(
            calibration=str(data.get("calibration", Calibration.TF)),
            calibration_samples=int(data.get("calibration_samples", 0)),
            layers=[LayerError.from_dict(layer) for layer in data.get("layers", [])],
            mixed=list(data.get("mixed_candidates", [])),
            sweep=list(data.get("sweep", [])),
        )

    def sweep_table(self) -> list[dict[str, Any]]:
        """Per count: mean, min and max agreement over the seeds."""
        rows = []
        for count in sorted({row["samples"] for row in self.sweep}):
            values = [row["agreement"] for row in self.sweep if row["samples"] == count]
            rows.append(
                {
                    "samples": count,
                    "seeds": len(values),
                    "mean": float(np.mean(values)),
                    "min": float(np.min(values)),
                    "max": float(np.max(values)),
                }
            )
        return rows


def sweep(
    converter: Converter, recipe: Recipe, route: Route, data: QuantData, keras_top1: np.ndarray, reporter: Reporter
) -> list[dict[str, Any]]:
    """int8 test agreement for every calibration count, each drawn with SWEEP_SEEDS seeds."""
    rows = []
    runs = [(count, data.seed + draw) for count in data.counts for draw in range(SWEEP_SEEDS)]
    with reporter.task("calibration sweep", total=len(runs)) as task:
        for done, (count, seed) in enumerate(runs):
            content = converter.convert(recipe, route, data.sample(count, seed)).content
            rows.append({"samples": count, "seed": seed, "agreement": round(agreement(content, data, keras_top1), 3)})
            task.update(done + 1, note=f"{count} images, seed {seed}")
    return rows


def measure(
    converter: Converter,
    recipe: Recipe,
    route: Route,
    data: QuantData,
    made: dict[str, Conversion],
    reporter: Reporter,
) -> tuple[QuantizationReport, float | None]:
    """quantization.json's content, and the mixed variant's test agreement (None without one).

    `recipe` is the int8 recipe the sweep re-calibrates with.
    """
    reporter.status("measuring per-layer int8 error" + (" and the calibration sweep" if len(data.counts) > 1 else ""))
    needs_keras = Precision.MIXED in made or len(data.counts) > 1
    keras_top1 = data.test_top1(converter.reference_scores) if needs_keras else None
    report = QuantizationReport(str(recipe.calibrated_by), len(data.calibration))
    if Precision.INT8 in made:
        report.layers = converter.layer_errors(made[Precision.INT8].content, data.calibration)
    mixed_agreement = None
    if Precision.MIXED in made and keras_top1 is not None:
        report.mixed = list(made[Precision.MIXED].details.get("tried", []))
        mixed_agreement = round(agreement(made[Precision.MIXED].content, data, keras_top1), 3)
    if len(data.counts) > 1 and keras_top1 is not None:
        report.sweep = sweep(converter, recipe, route, data, keras_top1, reporter)
    return report, mixed_agreement
