"""The source's own answers on the test split, before anything is trusted: each kind run by its own framework (Keras,
TensorFlow's SavedModel loader, a TFLite interpreter), fed what it expects (`Preprocessing.apply`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.folder.reader import InputSpec

from ..data.tf_pipeline import model_input_array
from ..errors import SourceError
from .graphs import Preprocessing, probabilities

CHUNK = 500
COLLAPSED_SHARE = 0.9  # one class taking this share of the answers, where the data has far fewer of it

Scorer = Callable[[np.ndarray], np.ndarray]  # raw pixels (N, H, W, C) float32 -> the class output (N, classes)


@dataclass(frozen=True)
class Measured:
    """The source's top-1 on the test split, and what its class output holds."""

    top1: np.ndarray
    accuracy: float
    logits: bool  # the output is not a probability vector: a softmax goes after it

    def collapsed(self, true: np.ndarray, classes: int) -> str | None:
        """The class the source gives to almost every image when the data has far fewer of it, else None."""
        if not len(self.top1) or classes < 2:
            return None
        counts = np.bincount(self.top1, minlength=classes)
        top = int(counts.argmax())
        share, truth = counts[top] / len(self.top1), float((true == top).mean())
        return str(top) if share >= COLLAPSED_SHARE and truth < COLLAPSED_SHARE / 2 else None


def measure(score: Scorer, images: Any, true: np.ndarray, spec: InputSpec) -> Measured:
    """Run `score` over the test images in chunks; top-1, accuracy, and whether the output is logits."""
    top1, logits = [], False
    for start in range(0, len(true), CHUNK):
        scores = np.asarray(score(model_input_array(images[start : start + CHUNK], spec)), np.float64)
        logits = logits or not probabilities(scores)
        top1.append(scores.argmax(axis=1))
    found = np.concatenate(top1) if top1 else np.zeros(0, np.int64)
    return Measured(found, float((found == true).mean()) if len(true) else 0.0, logits)


def keras_scorer(model: Any, pre: Preprocessing, output: int) -> Scorer:
    """The Keras source itself, fed normalised pixels: its chosen output."""

    def score(pixels: np.ndarray) -> np.ndarray:
        found = model.predict(pre.apply(pixels), batch_size=128, verbose=0)
        if isinstance(found, dict):
            found = [found[k] for k in sorted(found)]
        return found[output] if isinstance(found, list | tuple) else found

    return score


def saved_model_scorer(function: Any, keyword: str, output: str, pre: Preprocessing) -> Scorer:
    """The SavedModel's serving signature, run by TensorFlow, fed normalised pixels."""
    import tensorflow as tf

    def score(pixels: np.ndarray) -> np.ndarray:
        return function(**{keyword: tf.constant(pre.apply(pixels))})[output].numpy()

    return score


def tflite_scorer(interpreter: Any, pre: Preprocessing) -> Scorer:
    """A .tflite source run by a TFLite interpreter, fed normalised values (quantized by its input's scale): its
    output, dequantized."""
    from ..conversion.quantizer import input_tensor

    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def score(pixels: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(given["index"], [len(pixels), *given["shape"][1:]])
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], input_tensor(given, pre.apply(pixels)))
        interpreter.invoke()
        values = interpreter.get_tensor(taken["index"]).astype(np.float32)
        scale, zero_point = taken["quantization"]
        if scale:
            values = (values - zero_point) * np.float32(scale)
        return values.reshape(len(values), -1)

    return score


def refuse_untrustworthy(measured: Measured, true: np.ndarray, labels: list[str], where: str) -> None:
    """Near chance or one class for almost everything: a model broken before import (`--continue` goes on)."""
    from ..measure.learning import ClassCounts, learning

    classes = len(labels)
    collapsed = measured.collapsed(true, classes)
    if collapsed is not None:
        share = float((measured.top1 == int(collapsed)).mean())
        raise SourceError(
            f"{where}: calls {share:.0%} of the {len(true):,} test images {labels[int(collapsed)]!r}, a model "
            "collapsed to one class (stale batch-norm statistics, or the wrong --mean/--std); check it, or pass "
            "--continue to import it anyway"
        )
    verdict = learning(measured.accuracy, classes, ClassCounts.from_predictions(true, measured.top1, classes))
    if not verdict.learned:
        # far below what one class scores: a model that learned, read through labels in another order
        order = ", labels in another order than the outputs?" if verdict.accuracy < verdict.majority_rate / 2 else ""
        raise SourceError(
            f"{where}: {verdict.reason(labels)}{order}: check --mean/--std (what the source expects), --labels (in "
            "output order) and the data, or pass --continue to import it anyway"
        )


# The input scales people train with, as --mean/--std of RGB 0..255: tried beside the stated one, never chosen.
USUAL_SCALES = ((0.0, 1.0, "raw pixels 0..255"), (0.0, 255.0, "[0, 1]"), (127.5, 127.5, "[-1, 1]"))
SCALE_PROBE = 1000  # test images tried per scale (measured: a scale costing 12 points on 150 images, p=2e-05)


def refuse_a_wrong_scale(score_with: Callable[[Preprocessing], Scorer], pre: Preprocessing, measured: Measured,
                         images: Any, true: np.ndarray, spec: InputSpec, classes: int, where: str) -> None:  # fmt: skip
    """A usual input scale that scores significantly better than the stated one (McNemar, one-sided, on up to
    SCALE_PROBE test images) means the source was fed the wrong numbers: refused in one line, naming both; which
    one the source expects is for the user to say (`--continue` imports it as stated). A scale that only lifts
    the source to chance says nothing of scales (labels in another order do that): the learning check speaks."""
    from edge_runtime.normalization import per_channel, shown

    from ..data.dataset import balanced_indices
    from ..data.streamed import take
    from ..errors import UsageError
    from ..measure.learning import ClassCounts, learning
    from ..measure.paired import SIGNIFICANCE, better_than

    # spread over the classes: a folder's test split comes grouped by class, so its first images are one class
    probe = balanced_indices(true, SCALE_PROBE, seed=0) if len(true) > SCALE_PROBE else np.arange(len(true))
    count, channels, true = len(probe), spec.channels, true[probe]

    def same(mean: float, std: float) -> bool:
        return bool(np.allclose(per_channel(mean, channels), per_channel(pre.mean, channels)) and np.allclose(
            per_channel(std, channels), per_channel(pre.std, channels)))  # fmt: skip

    stated = next((name for mean, std, name in USUAL_SCALES if same(mean, std)), None)
    stated = stated or f"(pixel - {shown(pre.mean)}) / {shown(pre.std)}"
    right, probed = measured.top1[probe] == true, take(images, probe)
    for mean, std, name in USUAL_SCALES:
        if same(mean, std):
            continue
        other = measure(score_with(Preprocessing(mean, std, pre.bgr)), probed, true, spec)
        other_right = other.top1 == true
        p = better_than(int((other_right & ~right).sum()), int((right & ~other_right).sum()))
        counts = ClassCounts.from_predictions(true, other.top1, classes)
        if p < SIGNIFICANCE and learning(float(other_right.mean()), classes, counts).learned:
            raise UsageError(
                f"{where}: {right.mean():.2%} top-1 on {count:,} test images fed {stated}, but "
                f"{other_right.mean():.2%} fed {name} (McNemar p={p:.2g}): say what the source "
                f"expects, e.g. --mean {shown(mean)} --std {shown(std)} (its training's preprocessing), or pass "
                "--continue to import it as stated"
            )
