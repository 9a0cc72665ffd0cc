"""Fuzzing what edge_runtime reads (random bytes as images and models, damaged models, every image size
and mode): only its own one-line errors, never a crash; and it runs from a bare copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge_runtime.backends import load_interpreter
from edge_runtime.errors import EdgeRuntimeError, ImageError, ModelError
from edge_runtime.folder.reader import InputSpec
from edge_runtime.images import load_pixels, prepare_pixels
from tests.conftest import ROOT, requires_fashion_mnist

pytestmark = requires_fashion_mnist


FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_as_an_image_only_ever_raise_image_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.png"
    path.write_bytes(data)
    try:
        pixels = load_pixels(path, InputSpec(16, 16, 3))
    except ImageError:
        return
    assert pixels.shape == (16, 16, 3)


@FUZZ
@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from(["L", "RGB", "RGBA", "P", "CMYK", "I;16", "I", "F", "1", "LA"]),
    st.integers(1, 64),
    st.integers(1, 64),
    st.sampled_from([1, 3]),
    st.booleans(),
)
def test_any_image_size_and_mode_becomes_the_model_shape(
    width: int, height: int, mode: str, target_w: int, target_h: int, channels: int, invert: bool
) -> None:
    image = Image.new("RGB", (width, height), (width % 256, height % 256, 99)).convert(mode)
    pixels = prepare_pixels(image, InputSpec(target_h, target_w, channels, invert=invert))
    assert pixels.shape == (target_h, target_w, channels) and pixels.dtype == np.uint8


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=24), st.integers(8, 10**6))
def test_damaged_models_only_ever_raise_model_error(
    trained_folder: Path, tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], cut: int
) -> None:
    original = (trained_folder / "model_int8.tflite").read_bytes()
    data = bytearray(original[: max(8, min(cut, len(original)))])
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("fuzz") / "damaged.tflite"
    path.write_bytes(bytes(data))
    try:
        from edge_runtime import Predictor

        Predictor(path).predict(np.full((28, 28), 77, np.uint8))
    except EdgeRuntimeError:
        return


@FUZZ
@given(st.binary(min_size=0, max_size=2048))
def test_random_bytes_as_a_model_only_ever_raise_model_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.tflite"
    path.write_bytes(data[:4] + b"TFL3" + data[4:])  # past the identifier check, into the flatbuffer verifier
    with pytest.raises(ModelError):
        load_interpreter(path)


def test_edge_runtime_is_runnable_from_a_copy_without_the_pipeline(trained_folder: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edge_runtime", tmp_path / "edge_runtime")
    shutil.copytree(trained_folder, tmp_path / "model", ignore=shutil.ignore_patterns("model.keras"))
    Image.new("L", (28, 28), 200).save(tmp_path / "x.png")
    completed = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "predict", "model", "x.png", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)[0]["image"] == "x.png"


def test_embedded_metadata_whose_input_differs_from_the_model_is_one_line(tmp_path: Path) -> None:
    """Found by the fuzzer: one byte of the embedded input entry changed (width 28 -> 128) got past the checks and
    failed in set_tensor with a ValueError; the embedded entry is held to the model's shape as metadata.json is."""
    data = (ROOT / "models" / "fashion-mnist-cnn" / "model_int8.tflite").read_bytes()
    assert data.count(b'"width": 28') == 1
    path = tmp_path / "model.tflite"
    path.write_bytes(data.replace(b'"width": 28', b'"width": 98'))
    with pytest.raises(EdgeRuntimeError, match="input 28x98x1 does not match the model's 28x28x1"):
        from edge_runtime import Predictor

        Predictor(path)
