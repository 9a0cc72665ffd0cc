"""Data for training and evaluation: configuration, the three splits, and loading.

Named datasets live in `data.named`, image folders in `data.image_folders`; their public names are
re-exported here. The TensorFlow side (`tf_dataset`, `model_input_array`) is `data.tf_pipeline`, which
builds on this module (never the other way). Everything here returns plain numpy arrays of uint8 pixels.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from ..errors import DataError, UsageError
from .image_folders import FolderListing, Progress, list_folder, load_folder, peek_folder, relative_name
from .named import DEBIAN_DATASETS, IDX_FILES, NAMED_DATASETS, NamedDataset, NativeFormat, _read_idx
from .streamed import DiskImages, take

DEFAULT_SEED = 42  # splits, shuffling and initial weights: the same seed gives the same model

__all__ = [
    "DEBIAN_DATASETS",
    "IDX_FILES",
    "NAMED_DATASETS",
    "FolderListing",
    "NamedDataset",
    "NativeFormat",
    "_read_idx",
    "list_folder",
    "load_folder",
    "peek_folder",
]


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Which data to use and how to split it."""

    dataset: str = "fashion-mnist"
    data_path: Path | None = None  # a folder of class sub-folders; replaces `dataset`
    data_dir: Path | None = None  # where to look first for named datasets
    validation_split: float = 0.1
    test_split: float = 0.1  # image folders only; named datasets have their own test set
    seed: int = DEFAULT_SEED
    limit: int | None = None  # use at most this many training+validation images
    allow_download: bool = True
    # Image folders: decoded once into a file on disk and streamed (pipeline.data.streamed), else held in memory.
    stream: bool = True
    cache: Path | None = None  # where the decoded folder is kept between runs and stages (default: a temp folder)

    def __post_init__(self) -> None:
        if self.data_path is None and self.dataset not in NAMED_DATASETS:
            raise UsageError(
                f"unknown dataset {self.dataset!r}; choose one of {', '.join(NAMED_DATASETS)} or give --data FOLDER"
            )

    @property
    def name(self) -> str:
        return self.data_path.resolve().name if self.data_path is not None else self.dataset

    def to_record(self) -> dict[str, Any]:
        """The `dataset` block of metadata.json (sizes are added by the caller)."""
        return {
            "name": self.name,
            "path": str(self.data_path.resolve()) if self.data_path is not None else None,
            "data_dir": str(self.data_dir) if self.data_dir is not None else None,
            "validation_split": self.validation_split,
            "test_split": self.test_split if self.data_path is not None else None,
            "seed": self.seed,
            "limit": self.limit,
            "cache": str(self.cache) if self.cache is not None else None,
        }

    @classmethod
    def from_record(
        cls, record: dict[str, Any], data_path: Path | None = None, data_dir: Path | None = None
    ) -> DataConfig:
        """Rebuild the config a model was trained with; `data_path`/`data_dir` relocate the data."""
        path = data_path or (Path(record["path"]) if record.get("path") else None)
        directory = data_dir or (Path(record["data_dir"]) if record.get("data_dir") else None)
        return cls(
            dataset=record.get("name", "fashion-mnist") if path is None else "folder",
            data_path=path,
            data_dir=directory,
            validation_split=float(record.get("validation_split", 0.1)),
            test_split=float(record.get("test_split") or 0.1),
            seed=int(record.get("seed", DEFAULT_SEED)),
            limit=record.get("limit"),
            # the training run's --cache, when it is on this machine (a copied folder decodes into a temp folder)
            cache=Path(record["cache"]) if record.get("cache") and Path(record["cache"]).is_dir() else None,
        )


@dataclass(frozen=True)
class Augmentation:
    """Random changes to training images, as Keras preprocessing layers (training only)."""

    rotation: float = 0.0  # degrees either way
    shift: float = 0.0  # fraction of width/height
    zoom: float = 0.0  # fraction
    shear: float = 0.0  # fraction
    flip: bool = False  # horizontal; never for digits or text

    @property
    def enabled(self) -> bool:
        return bool(self.rotation or self.shift or self.zoom or self.shear or self.flip)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


# The seeds' recipe (rotation, shift, shear, zoom); flips are opt-in because digits must not flip.
DEFAULT_AUGMENTATION = Augmentation(rotation=10.0, shift=0.1, zoom=0.1, shear=0.1)


# --- loaded data ------------------------------------------------------------------------------


@dataclass
class Split:
    """Images (N, height, width, channels) uint8 and integer labels (N,); image folders' images stay on disk."""

    images: np.ndarray | DiskImages
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Split:
        return Split(take(self.images, indices), self.labels[indices])


@dataclass
class Dataset:
    """A dataset split three ways, with its labels and where it came from."""

    name: str
    labels: list[str]
    train: Split
    validation: Split
    test: Split
    source: str
    skipped: list[str] = field(default_factory=list)
    # Image folders: which file went where (split.json), and how the folder changed since that was recorded.
    files: dict[str, list[str]] | None = None
    changes: str | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def class_counts(self) -> list[int]:
        """Usable images of each class, over all three splits."""
        splits = (self.train, self.validation, self.test)
        return [int(c) for c in sum(np.bincount(s.labels, minlength=len(self.labels)) for s in splits)]


# --- splits ------------------------------------------------------------------------------------


def stratified_split(labels: np.ndarray, fraction: float, seed: int, minimum: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): `fraction` of every class held out, in a seeded order."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(minimum, round(len(members) * fraction))
        held.append(members[:count])
        kept.append(members[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def balanced_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices spread as evenly over the classes as they allow (seeded)."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == label))) for label in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop()))
    return np.asarray(sorted(chosen), dtype=np.int64)


def _check_class_sizes(labels: np.ndarray, names: list[str], needed: int, why: str) -> None:
    counts = np.bincount(labels, minlength=len(names))
    for name, count in zip(names, counts, strict=True):
        if count < needed:
            raise DataError(f"class {name!r} has {count} usable images; {why} needs at least {needed}")


FEW_IMAGES = 10  # a class with fewer usable images than this, or under 1% of the largest class, is warned about
FEW_SHARE = 0.01


def _folded(name: str) -> str:
    """A class name without case, spaces, punctuation or symbols: names equal here are one class spelled twice."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", name).casefold())


def class_warnings(names: list[str], counts: list[int]) -> list[str]:
    """Lines about classes that will train badly: very few images, or two folders that look like one class."""
    lines = []
    largest = max(counts, default=0)
    for name, count in zip(names, counts, strict=True):
        if count < FEW_IMAGES or count < FEW_SHARE * largest:
            biggest = names[counts.index(largest)]
            lines.append(
                f"class {name!r} has {count} usable image(s), against {largest} in {biggest!r}: too few to learn it or "
                "to test it; add images, merge it into another class, or remove its folder"
            )
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_folded(name), []).append(name)
    for similar in (group for group in groups.values() if len(group) > 1):
        listed = " and ".join(repr(n) for n in similar)
        lines.append(
            f"class folders {listed} differ only in case, spaces, punctuation or symbols, and train as "
            f"{len(similar)} classes; merge them if they are one"
        )
    return lines


def native_format(config: DataConfig) -> tuple[NativeFormat, list[str]]:
    """Image format and labels of the configured data, without decoding it all."""
    if config.data_path is not None:
        listing = list_folder(config.data_path)
        return peek_folder(listing), listing.classes
    named = NAMED_DATASETS[config.dataset]
    return named.native, list(named.labels)


SPLITS = ("train", "validation", "test")


def _recorded_folder(
    config: DataConfig, spec: InputSpec, progress: Progress | None, recorded: dict[str, Any]
) -> Dataset:
    """An image folder split as recorded at training time (split.json): new files left out, missing ones counted."""
    listing = list_folder(config.data_path)
    classes = list(recorded.get("classes") or listing.classes)
    assigned = {name: split for split in SPLITS for name in recorded.get(split, [])}
    present = {relative_name(listing, path) for files in listing.files for path in files}
    new = present - set(assigned) - set(recorded.get("unused", []))
    missing = set(assigned) - present
    decoded = load_folder(listing, spec, progress, set(assigned) & present, config.stream, config.cache)
    labels = np.asarray([classes.index(name.split("/", 1)[0]) for name in decoded.names], dtype=np.int64)
    parts = {}
    for split in SPLITS:
        chosen = [i for i, name in enumerate(decoded.names) if assigned[name] == split]
        parts[split] = Split(take(decoded.images, chosen), labels[chosen])
    changes = None
    if new or missing:
        changes = (
            f"{listing.root} changed since training: {len(new)} new file(s) left out (they were not in the "
            f"recorded split), {len(missing)} recorded file(s) missing; using the {len(parts['test'])} recorded "
            f"test images that are still there"
        )
    files = {"classes": classes, **{split: [n for n in decoded.names if assigned[n] == split] for split in SPLITS}}
    return Dataset(
        config.name,
        classes,
        parts["train"],
        parts["validation"],
        parts["test"],
        str(listing.root.resolve()),
        decoded.skipped,
        files,
        changes,
    )


def load_dataset(
    config: DataConfig, spec: InputSpec, progress: Progress | None = None, recorded: dict[str, Any] | None = None
) -> Dataset:
    """Load and split the configured data. Image folders are decoded at the model's size.

    With `recorded` (a model folder's split.json), an image folder is split as it was at training time.
    """
    if config.data_path is not None and recorded:
        return _recorded_folder(config, spec, progress, recorded)
    files_pool = files_test = None
    if config.data_path is not None:
        listing = list_folder(config.data_path)
        decoded = load_folder(listing, spec, progress, stream=config.stream, cache=config.cache)
        _check_class_sizes(decoded.labels, listing.classes, 3, "a training/validation/test split")
        pool, test = stratified_split(decoded.labels, config.test_split, config.seed, minimum=1)
        names, source, skipped = listing.classes, str(listing.root.resolve()), decoded.skipped
        x_pool, y_pool, x_test, y_test = (
            take(decoded.images, pool),
            decoded.labels[pool],
            take(decoded.images, test),
            decoded.labels[test],
        )
        files_pool, files_test = np.asarray(decoded.names)[pool], np.asarray(decoded.names)[test]
        unused = list(decoded.skipped_names)
    else:
        named = NAMED_DATASETS[config.dataset]
        (x_pool, y_pool, x_test, y_test), source = named.load(config.data_dir, config.allow_download)
        names, skipped = list(named.labels), []
        y_pool, y_test = y_pool.astype(np.int64), y_test.astype(np.int64)
    if config.limit is not None and config.limit < len(y_pool):
        keep = balanced_indices(y_pool, config.limit, config.seed)
        if files_pool is not None:
            unused += sorted(set(files_pool.tolist()) - set(files_pool[keep].tolist()))
            files_pool = files_pool[keep]
        x_pool, y_pool = take(x_pool, keep), y_pool[keep]
    _check_class_sizes(y_pool, names, 2, "a training/validation split")
    train, validation = stratified_split(y_pool, config.validation_split, config.seed + 1, minimum=1)
    files = None
    if files_pool is not None and files_test is not None:
        files = {
            "classes": names,
            "train": files_pool[train].tolist(),
            "validation": files_pool[validation].tolist(),
            "test": files_test.tolist(),
            "unused": unused,
        }
    return Dataset(
        name=config.name,
        labels=names,
        train=Split(take(x_pool, train), y_pool[train]),
        validation=Split(take(x_pool, validation), y_pool[validation]),
        test=Split(x_test, y_test),
        source=source,
        skipped=skipped,
        files=files,
    )
