"""What `compare` measures instead of believing: a folder's test images, loaded from its dataset record as
`evaluate` loads them, and its variants run on them through edge_runtime's Predictor, the interpreter path and
the preprocessing a device uses. The bytes that run are the bytes whose sha256 metadata.json records.

No TensorFlow: the accuracy measured equals evaluate's (the shipped fashion-mnist-cnn: 92.67%, 92.63%, 92.60%
for float32, dynamic, int8, as its drift.json says). Measured on 2 cores, 10,000 Fashion-MNIST test images:
loading them 0.3-0.5 s, then 0.6 s (dynamic, int8) to 2.0 s (float32) per file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.folder.reader import InputSpec
from edge_runtime.folder.selection import resolve_model
from edge_runtime.images import array_to_image, prepare_pixels
from edge_runtime.predictor import Predictor

from ..data.dataset import DataConfig, load_dataset
from ..data.fingerprint import test_fingerprint
from ..data.streamed import DiskImages
from ..errors import DataError, FolderError, UsageError
from ..folder import FolderStore, Metadata

CHUNK = 500  # test images preprocessed and run at a time


@dataclass(frozen=True)
class TestImages:
    """A folder's test split as loaded here, and what identifies it."""

    fingerprint: str  # which images, in which order, with which labels (as `evaluate` records it)
    pixels: str | None  # a named dataset's test images themselves (its fingerprint names them, not their pixels)
    labels: np.ndarray
    images: np.ndarray | DiskImages
    source: str  # where they were loaded from
    classes: tuple[str, ...] = ()  # the class names `labels` index (the data's, in its recorded order)

    def named(self, top1: np.ndarray, names: list[str]) -> np.ndarray:
        """A variant's top-1 output indices as the indices of the classes its labels name (-1: a name the test
        images do not have): a folder whose labels are reordered or renamed is measured by what it answers."""
        mapping = np.asarray([self.classes.index(n) if n in self.classes else -1 for n in names] + [-1], np.int64)
        return mapping[np.clip(top1, 0, len(names))]

    def same_as(self, other: TestImages) -> bool:
        return self.fingerprint == other.fingerprint and self.pixels == other.pixels


@dataclass
class Cache:
    """What one `compare` run loaded and measured: the same data is loaded once, the same bytes fed the same
    pixels are run once (a copy of a folder, a baseline gated against several candidates)."""

    images: dict[str, TestImages] = dataclasses.field(default_factory=dict)  # by the record they were loaded from
    top1: dict[tuple[str, ...], np.ndarray] = dataclasses.field(default_factory=dict)  # by run_key

    @staticmethod
    def run_key(content: bytes, spec: InputSpec, images: TestImages) -> tuple[str, ...]:
        return (hashlib.sha256(content).hexdigest(), repr(spec), images.fingerprint, str(images.pixels))


def test_images(store: FolderStore, metadata: Metadata, cache: dict[str, TestImages]) -> TestImages:
    """The folder's test split, from its dataset record (and split.json), never downloaded; DataError if not."""
    try:
        config = dataclasses.replace(DataConfig.from_record(metadata.dataset), allow_download=False)
        recorded = store.recorded_split(metadata)
        key = repr((config, metadata.input, recorded))
        if key not in cache:
            dataset = load_dataset(config, metadata.input, recorded=recorded)
            if len(dataset.test) == 0:
                raise DataError(f"{dataset.name}: the test split is empty")
            images = dataset.test.images
            pixels = None
            if dataset.files is None and isinstance(images, np.ndarray):
                pixels = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
            labels = np.asarray(dataset.test.labels, dtype=np.int64)
            fingerprint, classes = test_fingerprint(dataset), tuple(dataset.labels)
            cache[key] = TestImages(fingerprint, pixels, labels, images, dataset.source, classes)
        return cache[key]
    except (DataError, UsageError, FolderError, EdgeRuntimeError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"its test images cannot be loaded: {error}") from None


def checked_bytes(store: FolderStore, metadata: Metadata, variant: str) -> bytes:
    """A variant's bytes as edge_runtime reads them on a device, matching metadata.json's sha256 (FolderError)."""
    record = metadata.variants[variant]
    try:
        content = resolve_model(store.path / record.file, verify=True).content
    except EdgeRuntimeError as error:
        raise FolderError(f"{store.path}: {error}") from None
    if hashlib.sha256(content).hexdigest() != record.sha256:  # a file dropped in, or replaced since it was read
        raise FolderError(f"{store.path / record.file}: does not match its sha256 in metadata.json; re-run convert")
    return content


def device_pixels(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """What a device feeds the model for these uint8 images: edge_runtime's prepare_pixels, image by image
    (images already of the model's size and colour only get its inversion, all prepare_pixels would do)."""
    if tuple(images.shape[1:]) == (spec.height, spec.width, spec.channels):
        return 255 - images if spec.invert else images
    return np.stack([prepare_pixels(array_to_image(image), spec) for image in images])


def predictor(store: FolderStore, metadata: Metadata, variant: str) -> Predictor:
    """The variant's Predictor, on the bytes metadata.json's sha256 names (FolderError otherwise)."""
    record = metadata.variants[variant]
    try:
        made = Predictor(store.path / record.file, threads=os.cpu_count() or 1, verify=True)
    except EdgeRuntimeError as error:
        raise FolderError(f"{store.path / record.file}: {error}") from None
    if hashlib.sha256(made.content).hexdigest() != record.sha256:
        raise FolderError(f"{store.path / record.file}: does not match its sha256 in metadata.json; re-run convert")
    return made


def top1(
    predictors: dict[str, Predictor], images: TestImages, progress: Callable[[int], Any]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each variant's top-1 class of every test image, and why a variant could not be run on them."""
    found: dict[str, list[np.ndarray]] = {v: [] for v in predictors}
    failed: dict[str, str] = {}
    for start in range(0, len(images.labels), CHUNK):
        chunk = np.asarray(images.images[start : start + CHUNK])
        for variant, made in predictors.items():
            if variant in failed:
                continue
            try:
                found[variant].append(made.scores(device_pixels(chunk, made.spec)).argmax(axis=1))
            except (EdgeRuntimeError, ValueError) as error:
                failed[variant] = f"it cannot be run on its test images: {error}"
        progress(min(start + CHUNK, len(images.labels)))
    return {v: np.concatenate(parts) for v, parts in found.items() if v not in failed and parts}, failed
