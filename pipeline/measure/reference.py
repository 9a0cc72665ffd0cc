"""The model every variant of a folder is measured against: the Keras model `train` wrote, or an imported model's
reference (metadata.json's `source.reference`): its Keras model, or the .tflite it was imported as, run by
edge_runtime's Predictor with the folder's own normalization and class output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..folder import KERAS_FILE, FolderStore, Metadata

Scores = Callable[[np.ndarray], np.ndarray]  # raw pixels (N, H, W, C) float32 -> class probabilities (N, classes)


@dataclass(frozen=True)
class Reference:
    """What drift is measured against: its name in tables (Keras, or the imported file) and how it scores images."""

    name: str
    file: str
    scores: Scores
    keras: Any = None  # the Keras model, when the reference is one


def reference_file(metadata: Metadata) -> str:
    """The folder's file the variants are measured against: model.keras unless an import recorded another."""
    return metadata.source.reference if metadata.source is not None else KERAS_FILE


def load_reference(store: FolderStore, metadata: Metadata, threads: int | None = None) -> Reference:
    """The folder's reference, its file checked against its sha256 first."""
    name = reference_file(metadata)
    path = store.verified(name, metadata)
    if name == KERAS_FILE:
        import keras

        model = keras.models.load_model(path, compile=False)
        return Reference("Keras", name, lambda pixels: model.predict(pixels, batch_size=256, verbose=0), model)
    from edge_runtime.predictor import Predictor

    predictor = Predictor(path, threads=threads, verify=False)  # verified above
    kind = metadata.source.kind if metadata.source is not None else "tflite"
    return Reference(f"source ({kind})", name, predictor.scores)


def is_file_reference(metadata: Metadata) -> bool:
    """True when the folder's reference is a .tflite (an imported .tflite or SavedModel): no Keras model."""
    return reference_file(metadata) != KERAS_FILE
