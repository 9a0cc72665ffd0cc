"""`ModelFolder`: a handle on a model folder for notebooks and scripts, like Ultralytics' `YOLO(...)`.

It lists the folder's variants with what was measured of each (accuracy, latency, the recommendation),
reads its results back as the stages' typed results, runs the stages on it, and predicts with
edge_runtime (what ships). It reads the folder fresh each time: another process may have changed it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
from PIL import Image

from edge_runtime.folder.reader import FolderMetadata, VariantRecord, variant_filename

from ..errors import FolderError, UsageError
from ..folder import BENCHMARK_JSON, DRIFT_JSON, REPORT_MD, FolderStore
from ..output.tables import Shown, Table, num, pct
from ..store.commits import parsed_results, read_results_json
from . import api
from .options import BenchmarkOptions, ConvertOptions, DeployOptions, EvaluateOptions, ReportOptions

if TYPE_CHECKING:
    from edge_runtime.predictor import Classification, Predictor

    from ..conversion.stage import ConvertResult
    from ..devices.deploy import DeployResult
    from ..measure.benchmark import BenchmarkResult
    from ..measure.evaluate import DriftResult
    from ..reporting.record import Report

Images = (
    str | os.PathLike[str] | Image.Image | np.ndarray | Sequence["str | os.PathLike[str] | Image.Image | np.ndarray"]
)


@dataclass(frozen=True)
class Prediction:
    """One image's answer: where it came from and its top-k classes, best first."""

    image: str
    top: list[Classification]

    @property
    def label(self) -> str:
        return self.top[0].label

    @property
    def score(self) -> float:
        return self.top[0].score


@dataclass(repr=False)
class Predictions(Shown):
    """One Prediction per image, in the order given (folders: their images, sorted); a list that prints as a table."""

    variant: str
    items: list[Prediction]

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Prediction:
        return self.items[index]

    def summary(self) -> str:
        return f"{len(self.items)} image(s) classified by {self.variant}"

    def table(self) -> Table:
        k = max((len(p.top) for p in self.items), default=1)
        rows = [[p.image, *(f"{c.label} {c.score:.3f}" for c in p.top)] for p in self.items]
        columns = ["image", *(["class"] if k == 1 else [f"#{i + 1}" for i in range(k)])]
        return Table(self.summary(), columns, rows)


def _sources(images: Images) -> list[tuple[str, Any]]:
    """(name, source) for each image: a path, a folder (its images), a PIL image, an array, or a list of those."""
    from edge_runtime.images import collect_images

    given = list(images) if isinstance(images, list | tuple) else [images]
    found: list[tuple[str, Any]] = []
    for index, item in enumerate(given):
        if isinstance(item, str | os.PathLike):
            files, problems = collect_images([Path(item)])
            if problems:
                from edge_runtime.errors import ImageError

                raise ImageError(problems[0])
            found += [(str(f), f) for f in files]
        elif isinstance(item, Image.Image | np.ndarray):
            size = item.size if isinstance(item, Image.Image) else item.shape
            found.append((f"<{type(item).__name__} {index}: {size}>", item))
        else:
            raise UsageError(
                f"predict wants image paths, folders, PIL images or arrays (or a list of them), got "
                f"{type(item).__name__}"
            )
    return found


class ModelFolder(Shown):
    """A model folder (``models/<name>``): its variants and results, and the stages run on it.

    ``ModelFolder("models/fashion-mnist-cnn")`` checks the folder at once (a missing or damaged one raises
    FolderError); ``.variants``, ``.drift``, ``.latency`` and ``.recommended`` read what is there now;
    ``.convert()``, ``.evaluate()``, ``.benchmark()``, ``.report()`` and ``.deploy()`` run those stages with
    the same keyword arguments as ``pipeline.convert`` and the others; ``.predict(images)`` classifies.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise UsageError(f"ModelFolder wants a path, got {type(path).__name__}")
        self.path = Path(path)
        self._store = FolderStore(self.path)
        self._store.load()

    @property
    def metadata(self) -> FolderMetadata:
        """metadata.json as typed records (read now)."""
        return self._store.load()

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def variants(self) -> list[VariantRecord]:
        """Every variant as recorded in metadata.json, in the folder's order (a list, as in every result)."""
        return list(self.metadata.variants.values())

    def variant(self, name: str) -> VariantRecord:
        """One variant's record by name (``int8``, ``mediapipe-int8``, ...); FolderError when there is none."""
        variants = self.metadata.variants
        if name not in variants:
            raise FolderError(f"{self.path}: has no {name!r} variant; it has {', '.join(variants) or 'none yet'}")
        return variants[name]

    @property
    def recommended(self) -> str | None:
        """The variant the report recommends (what edge_runtime runs when given the folder)."""
        return self.metadata.recommended

    def _result(self, name: str, kind: Any) -> Any:
        metadata = self.metadata
        if name not in metadata.files or not self._store.file(name).is_file():
            return None
        data = read_results_json(self._store.verified(name, metadata), name)
        return parsed_results(name, lambda: kind.from_dict(data, self.path))

    @property
    def drift(self) -> DriftResult | None:
        """drift.json as a DriftResult (None before `evaluate`)."""
        from ..measure.evaluate import DriftResult

        return self._result(DRIFT_JSON, DriftResult)

    @property
    def latency(self) -> BenchmarkResult | None:
        """benchmark.json as a BenchmarkResult (None before `benchmark`)."""
        from ..measure.benchmark import BenchmarkResult

        return self._result(BENCHMARK_JSON, BenchmarkResult)

    @property
    def report_markdown(self) -> str | None:
        """report.md as text (None before `report`)."""
        path = self._store.file(REPORT_MD)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def convert(self, **options: Unpack[ConvertOptions]) -> ConvertResult:
        """`pipeline.convert` on this folder."""
        return api.convert(self.path, **options)

    def evaluate(self, **options: Unpack[EvaluateOptions]) -> DriftResult:
        """`pipeline.evaluate` on this folder."""
        return api.evaluate(self.path, **options)

    def benchmark(self, **options: Unpack[BenchmarkOptions]) -> BenchmarkResult:
        """`pipeline.benchmark` on this folder."""
        return api.benchmark(self.path, **options)

    def report(self, **options: Unpack[ReportOptions]) -> Report:
        """`pipeline.report` on this folder."""
        return api.report(self.path, **options)

    def deploy(self, **options: Unpack[DeployOptions]) -> DeployResult:
        """`pipeline.deploy` of this folder (``to="pi@raspberrypi.local"``)."""
        return api.deploy(self.path, **options)

    def predictor(self, variant: str | None = None, threads: int | None = None) -> Predictor:
        """An edge_runtime Predictor on the folder (its recommended variant) or on one variant by name."""
        from edge_runtime import Predictor

        return Predictor(self.path / variant_filename(variant) if variant else self.path, threads=threads)

    def predict(self, images: Images, top_k: int = 5, variant: str | None = None) -> Predictions:
        """Top-k classes of each image, as edge_runtime answers on a device: a path, a folder of images, a PIL
        image, an array, or a list of those; one Prediction per image. A bad image raises ImageError (a
        PipelineError) naming it."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise UsageError(f"top_k wants a whole number of at least 1, got {top_k!r}")
        if variant is not None and not isinstance(variant, str):
            raise UsageError(f"variant wants a variant's name (str), got {variant!r}")
        predictor = self.predictor(variant)
        sources = _sources(images)
        found = predictor.predict_batch([source for _, source in sources], top_k)
        chosen = predictor.variant or str(variant)
        return Predictions(chosen, [Prediction(name, top) for (name, _), top in zip(sources, found, strict=True)])

    def summary(self) -> str:
        metadata = self.metadata
        return f"{metadata.name}: {len(metadata.variants)} variants, recommended {metadata.recommended or 'none yet'}"

    def table(self) -> Table:
        metadata, drift, latency = self.metadata, self.drift, self.latency
        accuracy = {v.precision: v for v in drift.variants if v.sha256 == _sha(metadata, v.precision)} if drift else {}
        timed = {v.precision: v for v in latency.variants if v.sha256 == _sha(metadata, v.precision)} if latency else {}
        threads = min((t for v in timed.values() for t in v.latency), default=None)
        rows = []
        for name, variant in metadata.variants.items():
            measured, speed = accuracy.get(name), timed.get(name)
            p50 = speed.latency[threads].p50_ms if speed is not None and threads in speed.latency else None
            rows.append(
                [
                    name + (" *" if name == metadata.recommended else ""),
                    f"{variant.bytes / 1024:,.1f}",
                    pct(measured.accuracy if measured else None),
                    num(measured.change_pp if measured else None, "+.2f"),
                    num(p50, ".3f"),
                    variant.min_runtime or "-",
                ]
            )
        keras = metadata.training.get("test_accuracy")
        title = f"{metadata.name} ({self.path}): {metadata.training.get('model')}, reference {pct(keras)}"
        columns = ["variant", "size KB", "accuracy", "vs reference (pp)", f"p50 ms @{threads or '-'}t", "min runtime"]
        return Table(title, columns, rows, ["* recommended"] if metadata.recommended else [])


def _sha(metadata: FolderMetadata, name: str) -> str | None:
    variant = metadata.variants.get(name)
    return variant.sha256 if variant else None
