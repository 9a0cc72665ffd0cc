"""edge_runtime: run TFLite image classifiers on a device with numpy, pillow and an interpreter.

Copy this folder and a model folder to the device; no TensorFlow, no pipeline code needed.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import EdgePipelineError, EdgeRuntimeError, ImageError, LabelsError, MetadataError, ModelError, UsageError
from .folder.reader import InputSpec
from .predictor import Classification, Predictor

__all__ = [
    "Classification",
    "EdgePipelineError",
    "EdgeRuntimeError",
    "ImageError",
    "InputSpec",
    "LabelsError",
    "MetadataError",
    "ModelError",
    "Predictor",
    "UsageError",
    "__version__",
]
