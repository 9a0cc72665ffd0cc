"""`ModelFolder`: a handle on a model folder for notebooks and scripts, like Ultralytics' `YOLO(...)`.

It lists the folder's variants with what was measured of each (accuracy, latency, the recommendation),
reads its results back as the stages' typed results, runs the stages on it, and predicts with
edge_runtime (what ships). It reads the folder fresh each time: another process may have changed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_runtime.folder.reader import FolderMetadata, VariantRecord, variant_filename

from ..folder import BENCHMARK_JSON, DRIFT_JSON, REPORT_MD, FolderStore
from ..output.tables import Shown, Table, num, pct
from ..store.commits import read_results_json
from . import api


class ModelFolder(Shown):
    """A model folder (``models/<name>``): its variants and results, and the stages run on it.

    ``ModelFolder("models/fashion-mnist-cnn")`` checks the folder at once (a missing or damaged one raises
    FolderError); ``.variants``, ``.drift``, ``.latency`` and ``.recommended`` read what is there now;
    ``.convert()``, ``.evaluate()``, ``.benchmark()``, ``.report()`` and ``.deploy()`` run those stages with
    the same keyword arguments as ``pipeline.convert`` and the others; ``.predict(image)`` classifies.
    """

    def __init__(self, path: str | Path) -> None:
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
    def variants(self) -> dict[str, VariantRecord]:
        """Every variant (``int8``, ``mediapipe-int8``, ...) as recorded in metadata.json."""
        return dict(self.metadata.variants)

    @property
    def recommended(self) -> str | None:
        """The variant the report recommends (what edge_runtime runs when given the folder)."""
        return self.metadata.recommended

    def _result(self, name: str, kind: Any) -> Any:
        metadata = self.metadata
        if name not in metadata.files or not self._store.file(name).is_file():
            return None
        return kind.from_dict(read_results_json(self._store.verified(name, metadata), name), self.path)

    @property
    def drift(self) -> Any:
        """drift.json as a DriftResult (None before `evaluate`)."""
        from ..measure.evaluate import DriftResult

        return self._result(DRIFT_JSON, DriftResult)

    @property
    def latency(self) -> Any:
        """benchmark.json as a BenchmarkResult (None before `benchmark`)."""
        from ..measure.benchmark import BenchmarkResult

        return self._result(BENCHMARK_JSON, BenchmarkResult)

    @property
    def report_markdown(self) -> str | None:
        """report.md as text (None before `report`)."""
        path = self._store.file(REPORT_MD)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def convert(self, **options: Any) -> Any:
        """`pipeline.convert` on this folder."""
        return api.convert(self.path, **options)

    def evaluate(self, **options: Any) -> Any:
        """`pipeline.evaluate` on this folder."""
        return api.evaluate(self.path, **options)

    def benchmark(self, **options: Any) -> Any:
        """`pipeline.benchmark` on this folder."""
        return api.benchmark(self.path, **options)

    def report(self, **options: Any) -> Any:
        """`pipeline.report` on this folder."""
        return api.report(self.path, **options)

    def deploy(self, **options: Any) -> Any:
        """`pipeline.deploy` of this folder (``to="pi@raspberrypi.local"``)."""
        return api.deploy(self.path, **options)

    def predictor(self, variant: str | None = None, **options: Any) -> Any:
        """An edge_runtime Predictor on the folder (its recommended variant) or on one variant by name."""
        from edge_runtime import Predictor

        return Predictor(self.path / variant_filename(variant) if variant else self.path, **options)

    def predict(self, image: Any, top_k: int = 5, variant: str | None = None) -> list[Any]:
        """Top-k classes of one image (a path, a PIL image or an array), as edge_runtime answers on a device."""
        return self.predictor(variant).predict(image, top_k)

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
        title = f"{metadata.name} ({self.path}): {metadata.training.get('model')}, Keras {pct(keras)}"
        columns = ["variant", "size KB", "accuracy", "vs Keras (pp)", f"p50 ms @{threads or '-'}t", "min runtime"]
        return Table(title, columns, rows, ["* recommended"] if metadata.recommended else [])


def _sha(metadata: FolderMetadata, name: str) -> str | None:
    variant = metadata.variants.get(name)
    return variant.sha256 if variant else None
