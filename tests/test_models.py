"""Every registry model builds, takes raw pixels and predicts; options are checked early."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_runtime.folder.reader import InputSpec
from pipeline.data.dataset import NativeFormat
from pipeline.errors import DataError, UsageError
from pipeline.training.models import MODELS, ModelOptions, build_model, check_options, get_spec, unfreeze_top

NONE = ModelOptions(weights="none", alpha=0.35)


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("cnn", InputSpec(28, 28, 1, "grayscale")),
        ("cnn", InputSpec(64, 64, 3)),
        ("mlp", InputSpec(28, 28, 1, "grayscale")),
        ("mobilenet_v2", InputSpec(32, 32, 3)),
        ("vgg16", InputSpec(32, 32, 3)),
    ],
)
def test_each_model_builds_and_predicts_probabilities_from_raw_pixels(name: str, spec: InputSpec) -> None:
    model = build_model(name, spec, 7, NONE)
    pixels = np.random.default_rng(0).integers(0, 256, (3, spec.height, spec.width, spec.channels)).astype(np.float32)
    scores = model.predict(pixels, verbose=0)
    assert scores.shape == (3, 7)
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5) and scores.min() >= 0


def test_cnn_is_small_enough_for_edge_devices() -> None:
    model = build_model("cnn", InputSpec(28, 28, 1, "grayscale"), 10, ModelOptions())
    assert model.count_params() * 4 < 700 * 1024, "float32 weights must stay a few hundred KB"
    larger = build_model("cnn", InputSpec(224, 224, 3), 10, ModelOptions())
    assert larger.count_params() < model.count_params(), "larger images are pooled, not flattened"


def test_models_normalise_inside_the_graph() -> None:
    cnn = build_model("cnn", InputSpec(28, 28, 1, "grayscale"), 10, ModelOptions())
    assert cnn.layers[1].name == "normalise" and cnn.layers[1].scale == pytest.approx(1 / 255)
    mobilenet = build_model("mobilenet_v2", InputSpec(32, 32, 3), 10, NONE)
    layer = mobilenet.get_layer("preprocess_input")
    assert layer.scale == pytest.approx(1 / 127.5) and layer.offset == pytest.approx(-1.0)


def test_vgg_preprocessing_matches_keras_preprocess_input() -> None:
    import keras

    model = build_model("vgg16", InputSpec(32, 32, 3), 10, NONE)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    ours = model.get_layer("preprocess_input")(pixels).numpy()
    theirs = keras.applications.vgg16.preprocess_input(pixels.copy())
    assert np.allclose(ours, theirs, atol=1e-3)


def test_input_spec_follows_the_model_and_the_data() -> None:
    gray = NativeFormat(28, 28, 1)
    assert get_spec("cnn").input_spec(ModelOptions(), gray) == InputSpec(28, 28, 1, "grayscale", False, "uint8")
    assert get_spec("mobilenet_v2").input_spec(ModelOptions(), gray) == InputSpec(96, 96, 3, "rgb", False, "uint8")
    assert get_spec("mobilenet_v2").input_spec(ModelOptions(input_size=48), gray, invert=True).invert
    assert get_spec("cnn").input_spec(ModelOptions(), NativeFormat(480, 640, 3)).height == 64


def test_mobilenet_loads_local_weights_file(tmp_path: Path) -> None:
    import keras

    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    path = tmp_path / "mobilenet_v2_0.35_no_top.weights.h5"
    base.save_weights(path)
    model = build_model("mobilenet_v2", InputSpec(32, 32, 3), 4, ModelOptions(alpha=0.35, weights=str(path)))
    loaded = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert all(np.array_equal(a, b) for a, b in zip(base.get_weights(), loaded.get_weights(), strict=True))
    assert not loaded.trainable, "a pretrained base is frozen for transfer learning"
    assert unfreeze_top(model, 10) == 10
    assert sum(layer.trainable for layer in loaded.layers) == 10


def test_weights_of_another_architecture_are_a_clear_error(tmp_path: Path) -> None:
    import keras

    other = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=1.0, include_top=False, weights=None)
    path = tmp_path / "alpha1.weights.h5"
    other.save_weights(path)
    with pytest.raises(UsageError, match="cannot load into"):
        build_model("mobilenet_v2", InputSpec(32, 32, 3), 4, ModelOptions(alpha=0.35, weights=str(path)))


def test_missing_imagenet_weights_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    with pytest.raises(DataError, match="offline, train --model cnn") as caught:
        build_model("mobilenet_v2", InputSpec(96, 96, 3), 4, ModelOptions(alpha=0.35))
    assert "--weights PATH to a local mobilenet_v2 weights file" in str(caught.value)
    assert "or --weights none (mobilenet_v2 from scratch" in str(caught.value)
    # Offline weights are missing data (exit 1, like an offline dataset), and the network's own reason is kept whole.
    assert caught.value.exit_code == 1 and "caused by" in str(caught.value) and "(Exception)" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("mobilenet_v2", ModelOptions(alpha=0.6), "not a MobileNetV2 width"),
        ("mobilenet_v2", ModelOptions(input_size=16), "too small for mobilenet_v2; it needs at least 32"),
        ("vgg16", ModelOptions(input_size=31), "needs at least 32"),
        ("mobilenet_v2", ModelOptions(weights="/no/such.h5"), "not imagenet, none, or an existing"),
        ("mobilenet_v2", ModelOptions(weights="none", fine_tune=10), "--fine-tune needs pretrained weights"),
        ("cnn", ModelOptions(input_size=5000), "too large"),
    ],
)
def test_unsupported_options_are_usage_errors(name: str, options: ModelOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_options(get_spec(name), options)


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(UsageError, match="choose one of cnn, mlp, mobilenet_v2, vgg16"):
        get_spec("resnet")
    assert set(MODELS) == {"cnn", "mlp", "mobilenet_v2", "vgg16"}
