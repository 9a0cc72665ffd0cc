"""edge-pipeline: train an image classifier, convert it to TFLite in every precision, check its drift, benchmark it,
report which variant to ship, and deploy it. The Python API (docs/python-api.md):

    import pipeline

    trained = pipeline.train(dataset="fashion-mnist", model="cnn", epochs=3, output="models/quick")
    # or a model you have: pipeline.import_model("mine.keras", data="photos", output="models/mine")
    pipeline.convert(trained.folder)            # every precision; each result prints as a table
    pipeline.evaluate(trained.folder).gate()    # raises GateFailed past the accuracy budget
    pipeline.benchmark(trained.folder)
    pipeline.report(trained.folder)
    folder = pipeline.ModelFolder(trained.folder)
    folder.predict("photo.jpg")

Stages talk to each other through the model folder (``pipeline.folder``). Importing this package is
cheap: TensorFlow loads when a stage needs it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; imported on first use (PEP 562), so `import pipeline` stays light.
_PUBLIC = {
    "train": "surface.api",
    "import_model": "surface.api",
    "convert": "surface.api",
    "evaluate": "surface.api",
    "benchmark": "surface.api",
    "evaluate_on": "surface.api",
    "benchmark_on": "surface.api",
    "benchmark_emulated": "surface.api",
    "report": "surface.api",
    "deploy": "surface.api",
    "compare": "surface.api",
    "run": "surface.api",
    "RunResult": "surface.api",
    "ModelFolder": "surface.handle",
    "Reporter": "progress",
    "SilentReporter": "progress",
    "PipelineError": "errors",
    "UsageError": "errors",
    "DataError": "errors",
    "FolderError": "errors",
    "ConversionError": "errors",
    "SourceError": "errors",
    "GateFailed": "errors",
    "TrainingFailed": "errors",
    "Interrupted": "errors",
    "Precision": "choices",
    "Target": "choices",
    "Calibration": "choices",
    "IoType": "choices",
    "Route": "choices",
}
__all__ = [*sorted(_PUBLIC), "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
