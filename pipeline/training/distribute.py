"""Training on several devices or machines with TensorFlow's own engine, tf.distribute (`--distribute`).

`mirrored` is `MirroredStrategy` (every local GPU; on a machine without GPUs, `--replicas N` logical
CPU devices, to try it); `multi-worker` is `MultiWorkerMirroredStrategy`, configured by the standard
`TF_CONFIG` variable. Both train with one custom step (below) rather than `model.fit`: with TF 2.21 and
Keras 3.15, `fit` under MultiWorkerMirroredStrategy fails on every worker ("Attempt to convert a value
(PerReplica ...) with an unsupported type", keras-team/keras#20585, tensorflow/tensorflow#72388), while
`strategy.run` of a `tf.function` step with `tf.nn.compute_average_loss` trains the same Keras model.
Epochs run one at a time through pipeline.training.fitting, as on one device: early stopping on validation
loss with the best weights restored, the history, a progress bar per epoch, a checkpoint after each
(`--distribute mirrored`; a multi-worker training is not checkpointed: its workers would all have to resume).

`--batch-size` is per replica; each step takes `batch x replicas` images. The learning rate is not
scaled: with more replicas, scale `--learning-rate` yourself (linearly with the global batch is the usual
start, with warm-up for large factors). Only the chief (worker 0) writes the model folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..choices import Choice
from ..errors import UsageError
from ..progress import Reporter


class Distribute(Choice):
    """How training is spread over devices."""

    NONE = "none"  # one device, model.fit
    MIRRORED = "mirrored"  # every local GPU (or --replicas logical CPUs), one machine
    MULTI_WORKER = "multi-worker"  # several machines, TF_CONFIG


@dataclass(frozen=True)
class DistributeConfig:
    kind: Distribute = Distribute.NONE
    replicas: int | None = None  # mirrored without GPUs: this many logical CPU devices
    mixed_precision: bool = False  # mixed_float16 compute, float32 variables and output

    def __post_init__(self) -> None:
        if self.replicas is not None and (self.replicas < 1 or self.kind is not Distribute.MIRRORED):
            raise UsageError("--replicas is for --distribute mirrored, and at least 1")
        if self.kind is Distribute.MULTI_WORKER:
            _tf_config()  # a missing or malformed TF_CONFIG is a usage error before any work


@dataclass
class Cluster:
    """The strategy training runs under, and this process's place in it."""

    strategy: Any
    kind: Distribute
    workers: int = 1
    worker_index: int = 0
    mixed_precision: bool = False

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def chief(self) -> bool:
        return self.worker_index == 0

    def record(self) -> dict[str, Any]:
        return {
            "strategy": str(self.kind),
            "replicas": self.replicas,
            "workers": self.workers,
            "mixed_precision": self.mixed_precision,
        }


def _tf_config() -> tuple[int, int]:
    """(workers, this worker's index) from TF_CONFIG; a one-line usage error when it is missing or wrong."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UsageError(
            "--distribute multi-worker needs TF_CONFIG, e.g. "
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = len(cluster.get("chief", [])) + len(cluster["worker"])
        index = int(task["index"]) + (len(cluster.get("chief", [])) if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"TF_CONFIG is not a cluster and task description ({error!r})") from None
    return workers, index


def cluster_for(config: DistributeConfig) -> Cluster | None:
    """Create the strategy: before any other TensorFlow operation runs (multi-worker needs that)."""
    if config.kind is Distribute.NONE:
        return None
    import tensorflow as tf

    mixed = config.mixed_precision
    if config.kind is Distribute.MULTI_WORKER:
        workers, index = _tf_config()
        return Cluster(tf.distribute.MultiWorkerMirroredStrategy(), config.kind, workers, index, mixed)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus or not config.replicas:
        return Cluster(tf.distribute.MirroredStrategy(), config.kind, mixed_precision=mixed)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * config.replicas)
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return Cluster(tf.distribute.MirroredStrategy(devices=devices), config.kind, mixed_precision=mixed)


def set_precision_policy(config: DistributeConfig) -> None:
    """mixed_float16 for --mixed-precision (float32 variables; the models' score layers stay float32), else float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")


def scope(cluster: Cluster | None) -> contextlib.AbstractContextManager[Any]:
    return cluster.strategy.scope() if cluster is not None else contextlib.nullcontext()


def _sharded(dataset: Any) -> Any:
    """Every worker builds the same seeded pipeline and keeps its share of each batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@dataclass
class Steps:
    """The compiled train and evaluation steps of one model on one strategy."""

    train: Callable[[Any], Any]
    evaluate: Callable[[Any], Any]


def make_steps(cluster: Cluster, model: Any, optimizer: Any, loss: Callable[[Any, Any], Any]) -> Steps:
    """`strategy.run` of one step per batch; each returns (summed loss, correct, images) over all replicas."""
    import tensorflow as tf

    strategy, scaled = cluster.strategy, hasattr(optimizer, "scale_loss")

    def counts(labels: Any, scores: Any, per_image: Any) -> tuple[Any, Any, Any]:
        hit = tf.equal(tf.argmax(scores, axis=-1, output_type=tf.int64), tf.cast(tf.reshape(labels, [-1]), tf.int64))
        size = tf.cast(tf.size(per_image), tf.float32)
        return tf.reduce_sum(per_image), tf.reduce_sum(tf.cast(hit, tf.float32)), size

    def train_one(images: Any, labels: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            scores = tf.cast(model(images, training=True), tf.float32)
            per_image = tf.cast(loss(labels, scores), tf.float32)
            average = tf.nn.compute_average_loss(per_image)
            if model.losses:
                average += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            target = optimizer.scale_loss(average) if scaled else average
        gradients = tape.gradient(target, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return counts(labels, scores, per_image)

    def evaluate_one(images: Any, labels: Any) -> tuple[Any, Any, Any]:
        scores = tf.cast(model(images, training=False), tf.float32)
        return counts(labels, scores, tf.cast(loss(labels, scores), tf.float32))

    def summed(step: Callable[..., Any]) -> Callable[[Any], Any]:
        @tf.function
        def run(batch: Any) -> Any:
            per_replica = strategy.run(step, args=batch)
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica]

        return run

    return Steps(summed(train_one), summed(evaluate_one))


def _epoch(
    step: Callable[[Any], Any], batches: Any, on_batch: Callable[[int, float], None] | None
) -> tuple[float, float]:
    """(mean loss, accuracy) of one pass over a distributed dataset."""
    total = correct = images = 0.0
    for index, batch in enumerate(batches):
        loss_sum, hits, size = (float(value) for value in step(batch))
        total, correct, images = total + loss_sum, correct + hits, images + size
        if on_batch is not None:
            on_batch(index + 1, total / max(images, 1.0))
    return total / max(images, 1.0), correct / max(images, 1.0)


def evaluate(cluster: Cluster, steps: Steps, dataset: Any) -> tuple[float, float]:
    """(loss, accuracy) over a dataset, every worker taking part."""
    return _epoch(steps.evaluate, cluster.strategy.experimental_distribute_dataset(_sharded(dataset)), None)


def run_epoch(
    cluster: Cluster, steps: Steps, data: tuple[Any, Any], label: str, batches: int, reporter: Reporter
) -> dict[str, float]:
    """One epoch of the custom step over the training data, then the validation loss: Keras' logs of an epoch."""
    train = cluster.strategy.experimental_distribute_dataset(_sharded(data[0]))
    with reporter.task(label, batches) as task:
        loss, accuracy = _epoch(steps.train, train, lambda done, mean: task.update(done, note=f"loss {mean:.4f}"))
    val_loss, val_accuracy = evaluate(cluster, steps, data[1])
    reporter.status(
        f"{label.split('/')[0]}: loss {loss:.4f}, accuracy {accuracy:.4f}, val_loss {val_loss:.4f}, "
        f"val_accuracy {val_accuracy:.4f}"
    )
    return {"loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}


def phase_optimizer(cluster: Cluster, model: Any, schedule: Any) -> Any:
    """A fresh Adam on `schedule` for one training phase (loss-scaled for mixed precision), built in scope."""
    import keras

    with cluster.strategy.scope():
        optimizer = keras.optimizers.Adam(schedule)
        if cluster.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)  # its variables made here, not inside a replica
    return optimizer
