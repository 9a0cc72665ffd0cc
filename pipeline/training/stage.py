"""Train a model on a dataset and write the model folder (`edge-pipeline train`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_runtime.folder.reader import InputSpec

from ..data.dataset import (
    DEFAULT_AUGMENTATION,
    Augmentation,
    class_warnings,
    load_dataset,
    native_format,
)
from ..data.image_folders import skipped_line
from ..data.statistics import image_stats
from ..data.tf_pipeline import tf_dataset
from ..errors import UsageError
from ..folder import (
    CHECKPOINT_FILE,
    DERIVED_FILES,
    HISTORY_JSON,
    HISTORY_PNG,
    KERAS_FILE,
    LABELS_FILE,
    MB,
    SPLIT_JSON,
    FolderStore,
    model_identity,
    new_metadata,
)
from ..measure.learning import ClassCounts, Learning, learning
from ..output import plots
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from . import checkpoint, distribute
from .checkpoint import CheckpointUnusable, EpochState
from .config import MODELS_ROOT, HyperParams, TrainConfig
from .distribute import Cluster, DistributeConfig
from .fitting import Checkpointing, Fitted, TrainingPlan, fit_phases
from .keras_parts import loss_function
from .models import build_model, check_options, get_spec
from .settings import DEFAULT_BATCH_SIZE, check_retrain, resolve_batch_size, training_settings

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MODELS_ROOT",
    "HyperParams",
    "TrainConfig",
    "TrainResult",
    "resolve_batch_size",
    "train",
]


WORKER_WRITES = "nothing: a worker of the cluster; the chief writes the model folder"


@dataclass(repr=False)
class TrainResult(Shown):
    """What a training run produced: the folder written, test accuracy, epochs, time; prints as a table."""

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
    written: bool = True  # False on a worker that is not the chief: the chief writes the folder
    distribute: dict[str, Any] | None = None
    resumed_after: int = 0  # epochs a checkpoint of an interrupted training had done (0: trained from the start)
    labels: list[str] = field(default_factory=list)
    test_counts: ClassCounts | None = None  # per class: test images, predictions, right answers

    @property
    def learning(self) -> Learning:
        """Whether the model learned (`measure.learning`): near chance or collapsed, do not ship it."""
        return learning(self.test_accuracy, self.classes, self.test_counts)

    def summary(self) -> str:
        return (
            f"trained {self.name}: {self.test_accuracy:.2%} test accuracy, {self.epochs_run} epochs, in {self.folder}"
        )

    def table(self) -> Table:
        spec, sizes = self.input, self.sizes
        rows = [
            ["test accuracy", f"{self.test_accuracy:.2%} (loss {self.test_loss:.4f}) on {sizes['test']:,} test images"],
            ["model", f"{self.model}, {self.parameters:,} parameters, input {spec.height}x{spec.width}x{spec.channels} "
             f"{spec.color}"],
            ["epochs", f"{self.epochs_run} (best {self.best_epoch}), {sizes['train']:,} training / "
             f"{sizes['validation']:,} validation images"],
            ["time", f"{self.seconds:.0f} s training"
             + (f" (resumed after epoch {self.resumed_after})" if self.resumed_after else "")],
        ]  # fmt: skip
        if self.skipped:
            rows.append(["skipped", f"{len(self.skipped)} unreadable files"])
        files = f"model.keras {self.model_bytes / 1024:,.0f} KB, labels.txt, history.json/.png, metadata.json"
        rows.append(["written", f"{self.folder}/ ({files})" if self.written else WORKER_WRITES])
        notes = []
        if not self.learning.learned:
            notes.append(
                f"warning: the model did not learn, do not ship it: it is {self.learning.reason(self.labels)} (batch "
                f"{self.batch_size})"
            )
        return Table(f"trained {self.name}", ["", ""], rows, notes, header=False)


def augmentation_for(enabled: bool, flip: bool) -> Augmentation | None:
    """The seeds' augmentation recipe when enabled, with horizontal flips when asked for."""
    if not enabled:
        return Augmentation(flip=True) if flip else None
    return Augmentation(**{**asdict(DEFAULT_AUGMENTATION), "flip": flip})


def _check_tensorboard() -> None:
    # Keras only finds out at the end of the first batch, after the data has loaded.
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'edge-pipeline[train]' (or pip install "
            "tensorboard)"
        )


def _prepare(config: TrainConfig, reporter: Reporter, cluster: Cluster | None) -> TrainingPlan:
    model_spec = get_spec(config.model)
    check_options(model_spec, config.options)
    if config.tensorboard:
        _check_tensorboard()
    folder = FolderStore(config.folder)
    native, labels = native_format(config.data)
    spec = model_spec.input_spec(config.options, native, config.invert, config.resize)
    if cluster is None or cluster.chief:
        folder.check_writable_for(model_identity(config.model, config.data.to_record()), config.overwrite)
    with reporter.task(f"loading {config.data.name}") as task:
        dataset = load_dataset(config.data, spec, lambda done, total: task.update(done, total))
    if dataset.skipped:
        reporter.status(skipped_line(dataset.skipped, Path(dataset.source)))
    reporter.status(
        f"data: {dataset.name} from {dataset.source}: {len(dataset.train)} train, "
        f"{len(dataset.validation)} validation, {len(dataset.test)} test"
    )
    if config.data.data_path is not None:  # named datasets are balanced: only folders people made are checked
        for line in class_warnings(labels, dataset.class_counts()):
            reporter.status(f"warning: {line}")
    batch_size, batch_note = resolve_batch_size(config.hparams.batch_size, len(dataset.train))
    if batch_note:
        reporter.status(batch_note)
    plan = TrainingPlan(
        replace(config, hparams=replace(config.hparams, batch_size=batch_size)),
        folder,
        spec,
        labels,
        dataset,
        config.hparams.learning_rate or model_spec.default_learning_rate(config.options),
        config.hparams.batch_size,
        cluster,
        native,
    )
    options = config.options.to_record(model_spec)
    settings = training_settings(plan.config, spec, options, plan.learning_rate, batch_size)
    if plan.writes:
        check_retrain(folder, settings, config.overwrite, reporter)
    return plan


def _training_record(
    plan: TrainingPlan, model: Any, fitted: Fitted, test: tuple[float, float, ClassCounts | None]
) -> dict[str, Any]:
    """The `training` block of metadata.json, built once."""
    config, history = plan.config, fitted.history
    test_loss, test_accuracy, counts = test
    return {
        "model": config.model,
        "options": config.options.to_record(get_spec(config.model)),
        "hyperparameters": {**asdict(config.hparams), "learning_rate": plan.learning_rate},
        "batch_size_chosen": "auto" if plan.requested_batch is None else "given",
        "augmentation": config.augmentation.to_record() if config.augmentation else None,
        "epochs_run": len(history["loss"]),
        "fine_tune_epochs_run": len(history["loss"]) - fitted.head_epochs,
        "fine_tuned_layers": fitted.fine_tuned,
        "best_epoch": int(min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)) + 1,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "test_counts": counts.to_record() if counts is not None else None,
        "parameters": int(model.count_params()),
        "seconds": round(fitted.seconds, 2),
        "resumed_after": fitted.resumed_after,
        "distribute": plan.cluster.record() if plan.cluster is not None else None,
        "mixed_precision": config.distribute.mixed_precision,
    }


def _write(plan: TrainingPlan, model: Any, history: dict[str, list[float]], training: dict[str, Any]) -> None:
    """The folder's files, committed together; derived files of an older model are removed."""
    import keras

    dataset, config = plan.dataset, plan.config
    record = {
        **config.data.to_record(),
        "source": dataset.source,
        "sizes": dataset.sizes(),
        "skipped": len(dataset.skipped),
        **({"image_stats": image_stats(dataset, plan.spec, plan.native)} if plan.native and len(dataset.train) else {}),
    }
    with plan.folder.transaction() as tx:
        # Saved without optimizer state: a third of the size, and nothing downstream needs it.
        keras.Model(model.inputs, model.outputs, name=model.name).save(tx.path(KERAS_FILE))
        tx.write_text(LABELS_FILE, "\n".join(plan.labels) + "\n")
        tx.write_json(HISTORY_JSON, history)
        plots.history_plot(history, tx.path(HISTORY_PNG), title=f"{config.model_name}: training")
        for stale in (*DERIVED_FILES, SPLIT_JSON, CHECKPOINT_FILE):  # the checkpoint's training is finished
            tx.remove(stale)
        recorded = [KERAS_FILE, LABELS_FILE]
        if dataset.files is not None:
            tx.write_json(SPLIT_JSON, dataset.files)
            recorded.append(SPLIT_JSON)
        tx.commit(
            new_metadata(
                name=config.model_name,
                labels=plan.labels,
                input=plan.spec,
                dataset=record,
                training=training,
                files={name: tx.record(name) for name in recorded},
            )
        )


def _test(model: Any, plan: TrainingPlan) -> tuple[float, float, ClassCounts | None]:
    """(loss, accuracy, per-class counts) on the test split in training-size batches; under a strategy every worker
    takes part (and the counts, which the chief alone would need, are left out).

    A fixed batch of 512 held 512 images' activations at once: MobileNetV2 at 160 px peaked at 2,555 MB on 6,000
    photos against 1,754 MB in batches of 32 (benchmarks/streaming_memory.py).
    """
    cluster = plan.cluster
    batch = (plan.config.hparams.batch_size or 1) * (cluster.replicas if cluster is not None else 1)
    test = tf_dataset(plan.dataset.test, plan.spec, batch)
    if cluster is None:
        loss, accuracy = model.evaluate(test, verbose=0)
        return float(loss), float(accuracy), _test_counts(model, test, len(plan.labels))
    per_image = loss_function(plan.config.hparams.label_smoothing, len(plan.labels), reduction=None)
    loss, accuracy = distribute.evaluate(cluster, distribute.make_steps(cluster, model, None, per_image), test)
    return loss, accuracy, None


def _test_counts(model: Any, test: Any, classes: int) -> ClassCounts:
    """What the model answers on the test split, counted per class (one batch in memory at a time)."""
    import numpy as np

    true, predicted = [], []
    for images, labels in test:
        predicted.append(np.asarray(model(images, training=False)).argmax(axis=1))
        true.append(np.asarray(labels).reshape(-1))
    return ClassCounts.from_predictions(
        np.concatenate(true) if true else np.zeros(0, np.int64),
        np.concatenate(predicted) if predicted else np.zeros(0, np.int64),
        classes,
    )


def _float32(model: Any, plan: TrainingPlan) -> Any:
    """A mixed-precision model rebuilt in float32 with the same weights: what is saved, converted and shipped."""
    distribute.set_precision_policy(DistributeConfig())  # float32
    plain = build_model(plan.config.model, plan.spec, len(plan.labels), plan.config.options)
    plain.set_weights(model.get_weights())
    return plain


def train(config: TrainConfig, reporter: Reporter | None = None, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train `config.model` on `config.data` and write a complete model folder (on a cluster: the chief does).

    The folder's files are committed together at the end; an interrupted run leaves the folder as it was.
    """
    reporter = reporter or SilentReporter()
    cluster = distribute.cluster_for(config.distribute)  # before any TensorFlow operation: multi-worker needs that
    if cluster is not None and not cluster.chief:
        return _train(config, reporter, callbacks, cluster)  # writes nothing: no lock (the chief holds it)
    folder = FolderStore(config.folder)
    # Before the lock file goes in: a folder that is not a model folder is refused without a trace left in it.
    folder.check_writable_for(model_identity(config.model, config.data.to_record()), config.overwrite)
    with folder.writing("train", create=True):
        return _train(config, reporter, callbacks, cluster)


def _train(config: TrainConfig, reporter: Reporter, callbacks: Sequence[Any], cluster: Cluster | None) -> TrainResult:
    distribute.set_precision_policy(config.distribute)
    try:
        plan = _prepare(config, reporter, cluster)
        import keras

        keras.utils.set_random_seed(plan.config.hparams.seed)
        with distribute.scope(cluster):
            model = build_model(plan.config.model, plan.spec, len(plan.labels), plan.config.options)
        spec = plan.spec
        reporter.status(
            f"model: {plan.config.model}, {model.count_params():,} parameters, input "
            f"{spec.height}x{spec.width}x{spec.channels}" + (f"; {_where(cluster)}" if cluster is not None else "")
        )
        if plan.writes:  # the model, and the checkpoints training keeps (optimizer state: twice the weights)
            plan.folder.check_room(model.count_params() * 4 * 6 + 16 * MB, "train")
        state, store = _resume_state(plan, model, reporter)
        fitted = fit_phases(model, plan, reporter, callbacks, state, store)
        tested = _test(model, plan)
        if config.distribute.mixed_precision:
            model = _float32(model, plan)
    finally:
        distribute.set_precision_policy(DistributeConfig())  # float32 for whatever this process does next
    training = _training_record(plan, model, fitted, tested)
    if plan.writes:
        _write(plan, model, fitted.history, training)
    return TrainResult(
        folder=plan.folder.path,
        name=plan.config.model_name,
        model=plan.config.model,
        input=spec,
        test_accuracy=float(tested[1]),
        test_loss=float(tested[0]),
        parameters=int(model.count_params()),
        epochs_run=training["epochs_run"],
        resumed_after=fitted.resumed_after,
        best_epoch=training["best_epoch"],
        seconds=fitted.seconds,
        sizes=plan.dataset.sizes(),
        skipped=plan.dataset.skipped,
        history=fitted.history,
        model_bytes=plan.folder.keras_path.stat().st_size if plan.writes else 0,
        classes=len(plan.labels),
        batch_size=plan.config.hparams.batch_size or 0,
        written=plan.writes,
        distribute=training["distribute"],
        labels=list(plan.labels),
        test_counts=tested[2],
    )


def _where(cluster: Cluster) -> str:
    role = "the chief, which writes the model folder" if cluster.chief else "not the chief: it writes nothing"
    workers = f", worker {cluster.worker_index} of {cluster.workers} ({role})" if cluster.workers > 1 else ""
    return f"{cluster.kind} over {cluster.replicas} replica(s){workers}"


def _fingerprint(plan: TrainingPlan, model: Any) -> str:
    """What a checkpoint must have been made by to be resumed: these settings, this data, these libraries."""
    from ..data.fingerprint import data_identity
    from ..folder import library_versions

    config, dataset = plan.config, plan.dataset
    options = config.options.to_record(get_spec(config.model))
    return checkpoint.fingerprint(
        {
            "settings": training_settings(config, plan.spec, options, plan.learning_rate, plan.global_batch),
            "model": config.model,
            "input": plan.spec.to_dict(),
            "labels": plan.labels,
            "sizes": dataset.sizes(),
            "data": data_identity(config.data),
            "files": dataset.files,
            "distribute": plan.cluster.record() if plan.cluster is not None else None,
            "variables": [v.path for v in model.variables],
            "versions": {k: v for k, v in library_versions().items() if k in ("tensorflow", "keras", "numpy")},
        }
    )


def _resume_state(plan: TrainingPlan, model: Any, reporter: Reporter) -> tuple[EpochState, Checkpointing | None]:
    """Where the epochs start: after a checkpoint's when `--resume` (or `run`) finds one of this training."""
    fresh = EpochState(_fingerprint(plan, model), plan.total_epochs)
    if not plan.writes or (plan.cluster is not None and plan.cluster.workers > 1):
        return fresh, None  # a multi-worker training is not checkpointed (see pipeline.training.distribute)
    path = plan.folder.file(CHECKPOINT_FILE)
    store = Checkpointing(path)
    if not path.is_file():
        if plan.config.resume is True:
            reporter.status(f"nothing to resume in {plan.folder.path}: training from the first epoch")
        return fresh, store
    try:
        state = checkpoint.load(path, fresh.fingerprint)
        checkpoint.verify(path, model)  # every array, before saying "resuming"
    except CheckpointUnusable as why:
        reporter.status(f"{path}: not resumed, {why}; training from the first epoch")
        return fresh, store
    if plan.config.resume is False:
        reporter.status(
            f"{path}: an interrupted training of these settings had finished {state.epochs_done} epoch(s); "
            "starting over (pass --resume to continue it)"
        )
        return fresh, store
    reporter.status(
        f"resuming after epoch {state.epochs_done} (of at most {state.total_epochs}; saved {state.saved_at}) "
        f"from {path}"
    )
    store.pending = True
    return state, store
