"""The epochs of a training: the head, then fine-tuning; early stopping; a checkpoint after every epoch.

Both paths, Keras' `fit` on one device and the custom step under tf.distribute, run one epoch at a time
through the same loop, which keeps early stopping's state (as Keras' EarlyStopping: validation loss,
patience, the best weights restored at the end of a phase) and saves `checkpoint.npz` after each epoch
(pipeline.training.checkpoint). Every epoch's data is shuffled and augmented with a seed made from the
training's seed and the epoch's number, so a resumed training sees what an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_runtime.folder.reader import InputSpec

from ..data.dataset import Dataset, NativeFormat
from ..data.tf_pipeline import tf_dataset
from ..errors import FolderError
from ..folder import FolderStore
from ..progress import Reporter
from . import checkpoint, distribute
from .checkpoint import FINE_TUNE, HEAD, EpochState
from .config import TrainConfig
from .distribute import Cluster
from .keras_parts import keras_progress, loss_function
from .models import unfreeze_top

Epoch = Callable[[int], dict[str, float]]


@dataclass
class TrainingPlan:
    """Everything settled before the first epoch: checked folder, loaded data, resolved settings."""

    config: TrainConfig  # with the batch size resolved
    folder: FolderStore
    spec: InputSpec
    labels: list[str]
    dataset: Dataset
    learning_rate: float
    requested_batch: int | None
    cluster: Cluster | None = None
    native: NativeFormat | None = None  # the data's own size and channels (for image_stats)

    @property
    def writes(self) -> bool:
        """Only the chief of a multi-worker run writes (or checks) the model folder."""
        return self.cluster is None or self.cluster.chief

    @property
    def global_batch(self) -> int:
        """--batch-size is per replica: each step takes this many images."""
        return (self.config.hparams.batch_size or 1) * (self.cluster.replicas if self.cluster is not None else 1)

    @property
    def total_epochs(self) -> int:
        hp, options = self.config.hparams, self.config.options
        return hp.epochs + (hp.fine_tune_epochs if options.fine_tune and options.pretrained else 0)


@dataclass(frozen=True)
class Phase:
    name: str
    first_epoch: int
    epochs: int
    learning_rate: float

    @property
    def end(self) -> int:
        return self.first_epoch + self.epochs


@dataclass
class Checkpointing:
    """Where the checkpoint goes, and whether the next phase starts by restoring from it."""

    path: Path
    pending: bool = False  # a resumed training: restore before the first epoch


@dataclass
class Fitted:
    history: dict[str, list[float]]
    head_epochs: int
    fine_tuned: int
    seconds: float
    resumed_after: int = 0  # epochs a checkpoint had done (0: from the start)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffle and augmentation: a function of the epoch only, so resuming repeats it."""
    return seed + 10_007 * epoch  # epoch 0 shuffles with the seed itself, as before epochs were seeded


def _schedule(phase: Phase, steps: int) -> Any:
    import keras

    # Cosine decay reaches a good minimum in few epochs, which is what a 2-core machine affords.
    return keras.optimizers.schedules.CosineDecay(
        phase.learning_rate, decay_steps=max(1, phase.epochs * steps), alpha=0.02
    )


def _train_data(plan: TrainingPlan, epoch: int) -> Any:
    augmentation, seed = plan.config.augmentation, epoch_seed(plan.config.hparams.seed, epoch)
    train = plan.dataset.train
    return tf_dataset(train, plan.spec, plan.global_batch, training=True, augmentation=augmentation, seed=seed)


def _keras_phase(
    model: Any, plan: TrainingPlan, phase: Phase, reporter: Reporter, callbacks: Sequence[Any]
) -> tuple[Any, Epoch]:
    """Compile for the phase (a fresh Adam on its schedule) and return (optimizer, one epoch of `fit`)."""
    import keras

    hp = plan.config.hparams
    steps = -(-len(plan.dataset.train) // plan.global_batch)
    model.compile(
        optimizer=keras.optimizers.Adam(_schedule(phase, steps)),
        loss=loss_function(hp.label_smoothing, int(model.output_shape[-1])),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model.optimizer.build(model.trainable_variables)  # its variables exist now, so a checkpoint can fill them
    validation = tf_dataset(plan.dataset.validation, plan.spec, plan.global_batch)
    board = plan.config.tensorboard
    extra = [keras.callbacks.TensorBoard(log_dir=str(board))] if board else []

    def one_epoch(epoch: int) -> dict[str, float]:
        history = model.fit(
            _train_data(plan, epoch),
            validation_data=validation,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            shuffle=False,
            callbacks=[keras_progress(reporter, phase.epochs, phase.first_epoch), *extra, *callbacks],
        )
        return {key: float(values[-1]) for key, values in history.history.items()}

    return model.optimizer, one_epoch


def _distributed_phase(model: Any, plan: TrainingPlan, phase: Phase, reporter: Reporter) -> tuple[Any, Epoch]:
    """The same under tf.distribute: the custom step, (optimizer, one epoch)."""
    cluster = plan.cluster
    assert cluster is not None
    hp = plan.config.hparams
    steps = -(-len(plan.dataset.train) // plan.global_batch)
    optimizer = distribute.phase_optimizer(cluster, model, _schedule(phase, steps))
    loss = loss_function(hp.label_smoothing, int(model.output_shape[-1]), reduction=None)
    compiled = distribute.make_steps(cluster, model, optimizer, loss)
    validation = tf_dataset(plan.dataset.validation, plan.spec, plan.global_batch)

    def one_epoch(epoch: int) -> dict[str, float]:
        label = f"epoch {epoch + 1}/{phase.end}"
        return distribute.run_epoch(cluster, compiled, (_train_data(plan, epoch), validation), label, steps, reporter)

    return optimizer, one_epoch


def _run_phase(
    model: Any, plan: TrainingPlan, phase: Phase, state: EpochState, store: Checkpointing | None, start: Any
) -> None:
    """Epochs until the phase's last or early stopping; a checkpoint after each; the best weights at the end."""
    optimizer, one_epoch = start(phase)
    if store is not None and store.pending:
        try:
            checkpoint.restore(store.path, state, model, optimizer)
        except checkpoint.CheckpointUnusable as why:
            raise FolderError(
                f"{store.path}: cannot be resumed, {why}; train without --resume (run: with --force) to start over"
            ) from None
        store.pending = False
    while not state.stopped and state.epochs_done < phase.end:
        state.add(one_epoch(state.epochs_done), model, plan.config.hparams.patience)
        if store is not None:
            checkpoint.save(store.path, state, model, optimizer)
    if state.best_weights is not None:
        model.set_weights(state.best_weights)
    state.stopped = True


def fit_phases(
    model: Any,
    plan: TrainingPlan,
    reporter: Reporter,
    callbacks: Sequence[Any],
    state: EpochState,
    store: Checkpointing | None,
) -> Fitted:
    """Train the head (or the whole model), then fine-tune the top of a pretrained backbone when asked."""
    config, hp = plan.config, plan.config.hparams
    resumed_after, begun = (state.epochs_done if store is not None and store.pending else 0), time.perf_counter()

    def start(phase: Phase) -> tuple[Any, Epoch]:
        if plan.cluster is not None:
            return _distributed_phase(model, plan, phase, reporter)
        return _keras_phase(model, plan, phase, reporter, callbacks)

    if state.phase == HEAD:
        _run_phase(model, plan, Phase(HEAD, 0, hp.epochs, plan.learning_rate), state, store, start)
    fine_tuned = 0
    if config.options.fine_tune and config.options.pretrained and hp.fine_tune_epochs:
        if state.phase == HEAD:
            state.begin(FINE_TUNE)
        fine_tuned = unfreeze_top(model, config.options.fine_tune)
        reporter.status(f"fine-tuning the top {fine_tuned} layers at {hp.fine_tune_lr_factor:g}x the learning rate")
        rate = plan.learning_rate * hp.fine_tune_lr_factor
        phase = Phase(FINE_TUNE, state.head_epochs or 0, hp.fine_tune_epochs, rate)
        _run_phase(model, plan, phase, state, store, start)
    head_epochs = state.head_epochs if state.head_epochs is not None else state.epochs_done
    return Fitted(dict(state.history), head_epochs, fine_tuned, time.perf_counter() - begun, resumed_after)
