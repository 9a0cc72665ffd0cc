"""What both training paths share: the loss (per image for tf.distribute), and progress from Keras' fit."""

from __future__ import annotations

import contextlib
from typing import Any

from ..progress import Reporter


def keras_progress(reporter: Reporter, epochs: int, first_epoch: int = 0) -> Any:
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


def loss_function(label_smoothing: float, classes: int, reduction: str | None = "sum_over_batch_size") -> Any:
    """Cross-entropy on integer labels, with label smoothing when asked for.

    Smoothing bounds the logits, which int8 quantizes over their calibrated range: a model
    with logits of +-60 gets a quantization step of ~0.5 and ties borderline classes.
    """
    import keras

    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(reduction=reduction)
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=reduction)

    def loss(labels: Any, scores: Any) -> Any:
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32"), classes)
        return smoothed(one_hot, scores)

    return loss
