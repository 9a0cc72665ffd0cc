"""The folder-free conversion core: recipes and convert_model on a Keras model in memory."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.choices import IoType, Precision, Route
from pipeline.conversion.converter import Recipe, convert_model
from pipeline.conversion.mixed import MixedTarget


@pytest.fixture(scope="module")
def tiny_model() -> object:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_recipes_state_their_settings_once() -> None:
    int8 = Recipe.for_precision("int8", "uint8")
    assert int8.precision is Precision.INT8 and int8.io_type is IoType.UINT8 and int8.needs_calibration
    assert not Recipe.for_precision(Precision.FLOAT16).needs_calibration
    stricter = Recipe.for_precision("dynamic").with_flags(Recipe.for_precision("dynamic").compatibility_steps[0])
    assert dict(stricter.flags) == {"_experimental_disable_per_channel_quantization_for_dense_layers": True}


@pytest.mark.parametrize("precision", list(Precision))
def test_convert_model_in_memory(tiny_model: object, precision: Precision) -> None:
    from edge_runtime.backends import get_backend

    calibration = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 1)).astype(np.float32)
    recipe = Recipe.for_precision(
        precision, target=MixedTarget(max_float_share=1.0)
    )  # int8 of 4 filters is mostly overhead
    done = convert_model(tiny_model, recipe, Route.AUTO, calibration, selection=calibration)
    assert done.route.startswith(Route.SAVED_MODEL) and not done.failures and done.content[4:8] == b"TFL3"
    assert done.requirements.min_runtime and "CONV_2D" in done.requirements.ops
    interpreter = get_backend().interpreter_class(model_content=done.content)
    interpreter.allocate_tensors()
    expected = {"float32": "float32", "float16": "float32", "dynamic": "float32"}.get(precision, "int8")
    assert interpreter.get_input_details()[0]["dtype"].__name__ == expected
