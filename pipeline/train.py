"""Train a model on a dataset and write the model folder (`edge-pipeline train`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_runtime.model_folder import InputSpec

from . import bundle, plots
from .bundle import Metadata, ModelFolder
from .data import (
    DEFAULT_AUGMENTATION,
    DEFAULT_SEED,
    Augmentation,
    DataConfig,
    Dataset,
    load_dataset,
    native_format,
    tf_dataset,
)
from .errors import FolderError, UsageError
from .image_folders import name_all
from .models import ModelOptions, build_model, check_options, get_spec, unfreeze_top
from .progress import Reporter, SilentReporter

MODELS_ROOT = Path("models")
DEFAULT_BATCH_SIZE = 128
# Fewer optimizer steps an epoch than this and a small folder's model tends to stay at chance:
# 600 photos of 3 classes at batch 128 were 4 steps an epoch and 33.33% (every image one class).
MIN_STEPS_PER_EPOCH = 20
MIN_AUTO_BATCH = 8


@dataclass(frozen=True)
class HyperParams:
    """Training hyper-parameters. `learning_rate=None` takes the model's default."""

    epochs: int = 12
    batch_size: int | None = None  # None: DEFAULT_BATCH_SIZE, halved until an epoch has MIN_STEPS_PER_EPOCH steps
    learning_rate: float | None = None
    patience: int = 4  # epochs without a better validation loss before stopping
    fine_tune_epochs: int = 5
    fine_tune_lr_factor: float = 0.1
    seed: int = DEFAULT_SEED
    # Bounds the logits so int8 resolves them finely: int8 agreement with Keras rose from
    # 99.48% to 99.74% (cnn) and 98.26% to 98.91% (mobilenet_v2 0.35, 32 px); accuracy the same.
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.learning_rate is not None and not 0.0 < self.learning_rate < 1.0:
            raise UsageError(f"--learning-rate must be between 0 and 1, got {self.learning_rate}")
        if self.patience < 1:
            raise UsageError(f"--patience must be at least 1 epoch, got {self.patience}")
        if self.fine_tune_epochs < 0:
            raise UsageError(f"--fine-tune-epochs must be 0 or more, got {self.fine_tune_epochs}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` needs: data, model, hyper-parameters and where to write."""

    data: DataConfig = field(default_factory=DataConfig)
    model: str = "cnn"
    options: ModelOptions = field(default_factory=ModelOptions)
    hparams: HyperParams = field(default_factory=HyperParams)
    augmentation: Augmentation | None = None  # None: no augmentation
    invert: bool = False
    output: Path | None = None  # default models/<name>
    name: str | None = None  # default: the output folder's name, else <dataset>-<model>
    tensorboard: Path | None = None
    overwrite: bool = False

    @property
    def model_name(self) -> str:
        if self.name:
            return self.name
        if self.output is not None:
            return self.output.resolve().name
        # A --limit quick run gets its own folder, so it never replaces the full model.
        quick = f"-limit{self.data.limit}" if self.data.limit is not None else ""
        return f"{self.data.name}-{self.model}{quick}".replace("_", "-")

    @property
    def folder(self) -> Path:
        return self.output or MODELS_ROOT / self.model_name


@dataclass
class TrainResult:
    """What a training run produced."""

    folder: Path
    name: str
    model: str
    input: InputSpec
    test_accuracy: float
    test_loss: float
    parameters: int
    epochs_run: int
    best_epoch: int
    seconds: float
    sizes: dict[str, int]
    skipped: list[str]
    history: dict[str, list[float]]
    model_bytes: int
    classes: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    return -(-train_images // batch_size)


def resolve_batch_size(requested: int | None, train_images: int) -> tuple[int, str | None]:
    """The batch size to train with, and a line saying why when it was chosen or looks too large."""
    if requested is not None:
        steps = steps_per_epoch(train_images, requested)
        if steps >= MIN_STEPS_PER_EPOCH:
            return requested, None
        suggestion = max(MIN_AUTO_BATCH, train_images // MIN_STEPS_PER_EPOCH)
        return requested, (
            f"--batch-size {requested} gives {steps} step(s) an epoch on {train_images:,} training images; "
            f"models this starved often stay at chance: try --batch-size {suggestion}"
        )
    batch = DEFAULT_BATCH_SIZE
    while batch > MIN_AUTO_BATCH and steps_per_epoch(train_images, batch) < MIN_STEPS_PER_EPOCH:
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


def check_retrain(folder: ModelFolder, settings: dict[str, Any], overwrite: bool, reporter: Reporter) -> None:
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
    derived = [name for name in bundle.DERIVED_FILES if folder.file(name).is_file()]
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


def augmentation_for(enabled: bool, flip: bool) -> Augmentation | None:
    """The seeds' augmentation recipe when enabled, with horizontal flips when asked for."""
    if not enabled:
        return Augmentation(flip=True) if flip else None
    return Augmentation(**{**asdict(DEFAULT_AUGMENTATION), "flip": flip})


def _keras_progress(reporter: Reporter, epochs: int, first_epoch: int = 0) -> Any:
    """A Keras callback that feeds the reporter: one bar per epoch, one status line after it."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._stack = contextlib.ExitStack()
            self._task: Any = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            steps = self.params.get("steps")
            self._task = self._stack.enter_context(reporter.task(f"epoch {epoch + 1}/{first_epoch + epochs}", steps))

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            if self._task is not None:
                self._task.update(batch + 1, note=f"loss {logs.get('loss', float('nan')):.4f}" if logs else "")

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self._stack.close()
            self._task = None
            logs = logs or {}
            reporter.status(
                f"epoch {epoch + 1}: loss {logs.get('loss', 0):.4f}, accuracy {logs.get('accuracy', 0):.4f}, "
                f"val_loss {logs.get('val_loss', 0):.4f}, val_accuracy {logs.get('val_accuracy', 0):.4f}"
            )

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            self._stack.close()

    return Progress()


def _loss(label_smoothing: float, classes: int) -> Any:
    """Cross-entropy on integer labels, with label smoothing when asked for.

    Smoothing bounds the logits, which int8 quantizes over their calibrated range: a model
    with logits of +-60 gets a quantization step of ~0.5 and ties borderline classes.
    """
    import keras

    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy()
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)

    def loss(labels: Any, scores: Any) -> Any:
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32"), classes)
        return smoothed(one_hot, scores)

    return loss


def _compile(model: Any, learning_rate: Any, label_smoothing: float) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=_loss(label_smoothing, int(model.output_shape[-1])),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def _fit(
    model: Any,
    dataset: Dataset,
    spec: InputSpec,
    config: TrainConfig,
    epochs: int,
    learning_rate: float,
    reporter: Reporter,
    callbacks: Sequence[Any],
    first_epoch: int = 0,
) -> dict[str, list[float]]:
    import keras

    hp = config.hparams
    train_data = tf_dataset(
        dataset.train, spec, hp.batch_size, training=True, augmentation=config.augmentation, seed=hp.seed
    )
    validation_data = tf_dataset(dataset.validation, spec, hp.batch_size)
    steps = (len(dataset.train) + hp.batch_size - 1) // hp.batch_size
    # Cosine decay reaches a good minimum in few epochs, which is what a 2-core machine affords.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, epochs * steps), alpha=0.02)
    _compile(model, schedule, hp.label_smoothing)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp.patience, restore_best_weights=True)
    extra = [keras.callbacks.TensorBoard(log_dir=str(config.tensorboard))] if config.tensorboard else []
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=first_epoch + epochs,
        initial_epoch=first_epoch,
        verbose=0,
        shuffle=False,
        callbacks=[stop, _keras_progress(reporter, epochs, first_epoch), *extra, *callbacks],
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def _check_tensorboard() -> None:
    # Keras only finds out at the end of the first batch, after the data has loaded.
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'edge-pipeline[train]' (or pip install "
            "tensorboard)"
        )


def train(config: TrainConfig, reporter: Reporter | None = None, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train `config.model` on `config.data` and write a complete model folder.

    The folder's files are committed together at the end; an interrupted run leaves the
    folder as it was.
    """
    reporter = reporter or SilentReporter()
    requested_batch = config.hparams.batch_size
    model_spec = get_spec(config.model)
    check_options(model_spec, config.options)
    if config.tensorboard:
        _check_tensorboard()
    folder = ModelFolder(config.folder)
    native, labels = native_format(config.data)
    spec = model_spec.input_spec(config.options, native, config.invert)
    identity = bundle.model_identity(config.model, config.data.to_record())
    folder.check_writable_for(identity, config.overwrite)

    with reporter.task(f"loading {config.data.name}") as task:
        dataset = load_dataset(config.data, spec, lambda done, total: task.update(done, total))
    if dataset.skipped:
        reporter.status(
            f"skipped {len(dataset.skipped)} unreadable file(s): {name_all(dataset.skipped, Path(dataset.source))}"
        )
    reporter.status(
        f"data: {dataset.name} from {dataset.source}: {len(dataset.train)} train, {len(dataset.validation)} "
        f"validation, {len(dataset.test)} test"
    )
    batch_size, batch_note = resolve_batch_size(config.hparams.batch_size, len(dataset.train))
    if batch_note:
        reporter.status(batch_note)
    config = replace(config, hparams=replace(config.hparams, batch_size=batch_size))

    import keras

    learning_rate = config.hparams.learning_rate or model_spec.default_learning_rate(config.options)
    settings = training_settings(config, spec, config.options.to_record(model_spec), learning_rate, batch_size)
    check_retrain(folder, settings, config.overwrite, reporter)
    keras.utils.set_random_seed(config.hparams.seed)
    model = build_model(config.model, spec, len(labels), config.options)
    reporter.status(
        f"model: {config.model}, {model.count_params():,} parameters, input {spec.height}x{spec.width}x{spec.channels}"
    )

    start = time.perf_counter()
    history = _fit(model, dataset, spec, config, config.hparams.epochs, learning_rate, reporter, callbacks)
    head_epochs = len(history["loss"])
    fine_tuned = 0
    if config.options.fine_tune and config.options.pretrained and config.hparams.fine_tune_epochs:
        fine_tuned = unfreeze_top(model, config.options.fine_tune)
        reporter.status(
            f"fine-tuning the top {fine_tuned} layers at {config.hparams.fine_tune_lr_factor:g}x the learning rate"
        )
        more = _fit(
            model,
            dataset,
            spec,
            config,
            config.hparams.fine_tune_epochs,
            learning_rate * config.hparams.fine_tune_lr_factor,
            reporter,
            callbacks,
            first_epoch=head_epochs,
        )
        history = {key: history.get(key, []) + more.get(key, []) for key in history}
    seconds = time.perf_counter() - start

    test_loss, test_accuracy = model.evaluate(tf_dataset(dataset.test, spec, 512), verbose=0)
    best_epoch = int(min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)) + 1

    training = {
        "model": config.model,
        "options": config.options.to_record(model_spec),
        "hyperparameters": {**asdict(config.hparams), "learning_rate": learning_rate},
        "batch_size_chosen": "auto" if requested_batch is None else "given",
        "augmentation": config.augmentation.to_record() if config.augmentation else None,
        "epochs_run": len(history["loss"]),
        "fine_tune_epochs_run": len(history["loss"]) - head_epochs,
        "fine_tuned_layers": fine_tuned,
        "best_epoch": best_epoch,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "parameters": int(model.count_params()),
        "seconds": round(seconds, 2),
    }
    dataset_record = {
        **config.data.to_record(),
        "source": dataset.source,
        "sizes": dataset.sizes(),
        "skipped": len(dataset.skipped),
    }

    with folder.transaction() as tx:
        # Saved without optimizer state: a third of the size, and nothing downstream needs it.
        keras.Model(model.inputs, model.outputs, name=model.name).save(tx.path(bundle.KERAS_FILE))
        tx.write_text(bundle.LABELS_FILE, "\n".join(labels) + "\n")
        tx.write_json(bundle.HISTORY_JSON, history)
        plots.history_plot(history, tx.path(bundle.HISTORY_PNG), title=f"{config.model_name}: training")
        for stale in bundle.DERIVED_FILES:
            tx.remove(stale)
        if dataset.files is not None:
            tx.write_json(bundle.SPLIT_JSON, dataset.files)
        else:
            tx.remove(bundle.SPLIT_JSON)
        metadata = bundle.new_metadata(
            name=config.model_name,
            labels=labels,
            input=spec,
            dataset=dataset_record,
            training=training,
            files={
                name: tx.record(name)
                for name in (bundle.KERAS_FILE, bundle.LABELS_FILE)
                + ((bundle.SPLIT_JSON,) if dataset.files is not None else ())
            },
        )
        tx.commit(metadata)

    return TrainResult(
        folder=folder.path,
        name=config.model_name,
        model=config.model,
        input=spec,
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        parameters=int(model.count_params()),
        epochs_run=len(history["loss"]),
        best_epoch=best_epoch,
        seconds=seconds,
        sizes=dataset.sizes(),
        skipped=dataset.skipped,
        history=history,
        model_bytes=folder.keras_path.stat().st_size,
        classes=len(labels),
        batch_size=batch_size,
    )
