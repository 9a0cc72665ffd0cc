"""Classifiers made the way people make them in a notebook, not by `edge-pipeline train`: the sources
tests/test_import.py imports. Run as a script (one process, TensorFlow loaded once):

    python tests/import_sources.py DATA_DIR HELD_OUT_DIR OUT_DIR

DATA_DIR holds one sub-folder of 32x32 RGB PNGs per class, HELD_OUT_DIR more of them (not in DATA_DIR). Writes into
OUT_DIR each source, and answers.json: each source's own top-1 on the held-out images (sorted by file name), run by
its own framework (Keras, TensorFlow's SavedModel loader, a TFLite interpreter), with the preprocessing it expects.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # ImageNet's, as torchvision and Keras applications use
STD = np.array([58.395, 57.12, 57.375], np.float32)


def images_of(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = sorted(p for c in classes for p in (folder / c).glob("*.png"))
    x = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in files])
    return x, np.array([classes.index(f.parent.name) for f in files]), classes


def conv_net(inputs: keras.KerasTensor, x: keras.KerasTensor, classes: int, softmax: bool) -> keras.Model:
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax" if softmax else None)(x))


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray | list[np.ndarray], logits: bool = False) -> keras.Model:
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    model.compile(keras.optimizers.Adam(3e-3), loss)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    return model


def main(data: Path, held_out: Path, out: Path) -> None:
    keras.utils.set_random_seed(7)
    x, y, classes = images_of(data)
    test = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in sorted(held_out.glob("*.png"))])
    n = len(classes)
    answers: dict[str, list[int]] = {}

    # 1. The preprocessing inside: a Rescaling layer, softmax out.
    inputs = keras.Input((32, 32, 3))
    inside = fit(conv_net(inputs, keras.layers.Rescaling(1 / 255)(inputs), n, softmax=True), x, y)
    inside.save(out / "inside.keras")
    answers["inside.keras"] = inside.predict(test, verbose=0).argmax(1).tolist()

    # 2. A legacy .h5 fed [-1, 1], ending in logits.
    inputs = keras.Input((32, 32, 3))
    logits = fit(conv_net(inputs, inputs, n, softmax=False), x / 127.5 - 1, y, logits=True)
    logits.save(out / "logits.h5")
    answers["logits.h5"] = logits.predict(test / 127.5 - 1, verbose=0).argmax(1).tolist()

    # 3. A SavedModel fed ImageNet-normalised pixels.
    inputs = keras.Input((32, 32, 3))
    imagenet = fit(conv_net(inputs, inputs, n, softmax=True), (x - MEAN) / STD, y)
    imagenet.export(str(out / "imagenet_saved_model"), format="tf_saved_model", verbose=False)
    serve = tf.saved_model.load(str(out / "imagenet_saved_model")).signatures["serving_default"]
    found = next(iter(serve(tf.constant((test - MEAN) / STD)).values())).numpy()
    answers["imagenet_saved_model"] = found.argmax(1).tolist()

    # 4. A float32 .tflite fed [0, 1], without metadata; 6. the same, full int8 (int8 in and out).
    inputs = keras.Input((32, 32, 3))
    unit = fit(conv_net(inputs, inputs, n, softmax=True), x / 255, y)
    unit.export(str(out / "unit_saved_model"), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(out / "unit_saved_model"))
    (out / "unit.tflite").write_bytes(converter.convert())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None] / 255] for image in x[:200])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    (out / "unit_int8.tflite").write_bytes(converter.convert())
    for name in ("unit.tflite", "unit_int8.tflite"):
        answers[name] = tflite_top1(out / name, test / 255)

    heads_and_lambda(x, y, test, n, out, answers)
    (out / "answers.json").write_text(json.dumps(answers))


def heads_and_lambda(x: np.ndarray, y: np.ndarray, test: np.ndarray, n: int, out: Path, answers: dict) -> None:
    # 5. Two heads, the classes second: an auxiliary 5-way head (the next class) comes first.
    inputs = keras.Input((32, 32, 3))
    trunk = keras.layers.MaxPooling2D()(keras.layers.Conv2D(16, 3, activation="relu")(inputs / 255))
    trunk = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(32, 3, activation="relu")(trunk))
    aux, main_head = keras.layers.Dense(n, name="aux")(trunk), keras.layers.Dense(n, activation="softmax")(trunk)
    two = keras.Model(inputs, [aux, main_head])
    losses = [
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        keras.losses.SparseCategoricalCrossentropy(),
    ]
    two.compile(keras.optimizers.Adam(3e-3), losses)
    two.fit(x, [(y + 1) % n, y], epochs=8, batch_size=32, verbose=0)
    two.save(out / "two_heads.keras")
    answers["two_heads.keras"] = two.predict(test, verbose=0)[1].argmax(1).tolist()

    # 7. A Lambda layer that would leave a mark if it ever ran.
    marker = str(out / "lambda-ran")
    inputs = keras.Input((32, 32, 3))
    marked = keras.layers.Lambda(lambda t: t + 0 * len(open(marker, "w").name))(inputs)  # noqa: SIM115
    keras.Model(inputs, keras.layers.Dense(n)(keras.layers.Flatten()(marked))).save(out / "lambda.keras")
    Path(marker).unlink(missing_ok=True)  # building it ran the lambda once; loading must not


def tflite_top1(path: Path, values: np.ndarray) -> list[int]:
    interpreter = tf.lite.Interpreter(model_path=str(path))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = given["quantization"]
    if scale:
        values = np.clip(np.round(values / scale + zero_point), -128, 127)
    interpreter.resize_tensor_input(given["index"], [len(values), 32, 32, 3])
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], values.astype(given["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(taken["index"]).argmax(1).tolist()


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
