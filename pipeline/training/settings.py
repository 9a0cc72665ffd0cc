"""What a training run is: its batch size on this data, its settings, and what training again would replace."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edge_runtime.folder.reader import InputSpec

from ..errors import FolderError
from ..folder import DERIVED_FILES, FolderStore, Metadata
from ..progress import Reporter
from .config import TrainConfig

DEFAULT_BATCH_SIZE = 128
# Fewer optimizer steps an epoch than this and a small folder's model tends to stay at chance:
# 600 photos of 3 classes at batch 128 were 4 steps an epoch and 33.33% (every image one class).
MIN_STEPS_PER_EPOCH = 20
MIN_AUTO_BATCH = 8


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    return -(-train_images // batch_size)


def too_few_steps(train_images: int, batch_size: int) -> bool:
    """True when an epoch has fewer optimizer steps than a small folder needs to learn at all."""
    return steps_per_epoch(train_images, batch_size) < MIN_STEPS_PER_EPOCH


def suggested_batch_size(train_images: int) -> int:
    """A batch size that gives an epoch MIN_STEPS_PER_EPOCH steps (never below MIN_AUTO_BATCH)."""
    return max(MIN_AUTO_BATCH, train_images // MIN_STEPS_PER_EPOCH)


def resolve_batch_size(requested: int | None, train_images: int) -> tuple[int, str | None]:
    """The batch size to train with, and a line saying why when it was chosen or looks too large."""
    if requested is not None:
        if not too_few_steps(train_images, requested):
            return requested, None
        return requested, (
            f"--batch-size {requested} gives {steps_per_epoch(train_images, requested)} step(s) an epoch on "
            f"{train_images:,} training images; models this starved often stay at chance: try --batch-size "
            f"{suggested_batch_size(train_images)}"
        )
    batch = DEFAULT_BATCH_SIZE
    while batch > MIN_AUTO_BATCH and too_few_steps(train_images, batch):
        batch //= 2
    if batch == DEFAULT_BATCH_SIZE:
        return batch, None
    return batch, (
        f"batch size {batch}: {train_images:,} training images at {DEFAULT_BATCH_SIZE} would be "
        f"{steps_per_epoch(train_images, DEFAULT_BATCH_SIZE)} step(s) an epoch; {batch} gives "
        f"{steps_per_epoch(train_images, batch)} (pass --batch-size to choose)"
    )


def training_settings(
    config: TrainConfig, spec: InputSpec, options: dict[str, Any], learning_rate: float, batch_size: int
) -> dict[str, Any]:
    """What makes two trainings of the same model and data the same: every setting, resolved."""
    data = config.data.to_record()
    return {
        "options": options,
        **asdict(config.hparams),
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "augmentation": config.augmentation.to_record() if config.augmentation else None,
        "invert": spec.invert,
        **{f"data.{k}": data[k] for k in ("validation_split", "test_split", "seed", "limit")},
    }


def recorded_settings(metadata: Metadata) -> dict[str, Any]:
    """training_settings() of the model already in a folder, from its metadata.json."""
    training = metadata.training
    return {
        "options": training.get("options"),
        **dict(training.get("hyperparameters") or {}),
        "augmentation": training.get("augmentation"),
        "invert": metadata.input.invert,
        **{f"data.{k}": metadata.dataset.get(k) for k in ("validation_split", "test_split", "seed", "limit")},
    }


def check_retrain(folder: FolderStore, settings: dict[str, Any], overwrite: bool, reporter: Reporter) -> None:
    """Say what training again replaces; refuse different settings without --overwrite."""
    if not folder.has_metadata():
        return
    try:
        existing = folder.load()
    except FolderError:  # unreadable metadata: check_writable_for already demanded --overwrite
        reporter.status(f"replacing the damaged model folder {folder.path} (--overwrite)")
        return
    old = recorded_settings(existing)
    changed = [f"{key} {old.get(key)} -> {value}" for key, value in settings.items() if old.get(key) != value]
    derived = [name for name in DERIVED_FILES if folder.file(name).is_file()]
    replaced = (
        f"its model.keras and {len(derived)} derived file(s) ({', '.join(derived)})" if derived else "its model.keras"
    )
    accuracy = existing.training.get("test_accuracy")
    held = (
        f"{existing.training.get('model')} at {accuracy:.2%}"
        if isinstance(accuracy, float)
        else existing.training.get("model")
    )
    if changed and not overwrite:
        raise FolderError(
            f"{folder.path}: holds a {held} trained with other settings ({'; '.join(changed)}); training "
            f"would replace {replaced}: pass --overwrite to replace it, or choose another --output"
        )
    reporter.status(
        f"replacing the {held} in {folder.path} ({'--overwrite' if changed else 'same settings'}): {replaced}"
    )
