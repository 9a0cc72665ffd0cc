"""Data discovery, named-dataset readers, splits, image folders and the tf.data pipeline."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime.folder.reader import InputSpec
from pipeline.data.dataset import (
    DataConfig,
    Split,
    balanced_indices,
    list_folder,
    load_dataset,
    native_format,
    stratified_split,
)
from pipeline.data.tf_pipeline import model_input, tf_dataset
from pipeline.errors import DataError, UsageError
from tests.conftest import FASHION_MNIST, requires_fashion_mnist

GRAY28 = InputSpec(28, 28, 1, "grayscale")


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_set(folder: Path, train: int = 60, test: int = 20, classes: int = 10) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes(rng.integers(0, 256, (count, 28, 28))))
        )
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.arange(count) % classes)))


@pytest.fixture
def no_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "keras-home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


# --- discovery --------------------------------------------------------------------------------


def test_data_dir_is_searched_before_keras_cache_and_debian(tmp_path: Path, no_keras_cache: Path) -> None:
    _write_idx_set(tmp_path / "mine" / "fashion-mnist", train=40)
    _write_idx_set(no_keras_cache / "datasets" / "fashion-mnist", train=80)
    dataset = load_dataset(DataConfig(data_dir=tmp_path / "mine"), GRAY28)
    assert dataset.source == str(tmp_path / "mine" / "fashion-mnist")
    assert len(dataset.train) + len(dataset.validation) == 40


def test_keras_cache_is_searched_before_debian(no_keras_cache: Path) -> None:
    _write_idx_set(no_keras_cache / "datasets" / "fashion-mnist", train=80)
    dataset = load_dataset(DataConfig(), GRAY28)
    assert dataset.source == str(no_keras_cache / "datasets" / "fashion-mnist")
    assert len(dataset.train) + len(dataset.validation) == 80


@requires_fashion_mnist
def test_debian_fashion_mnist_is_found_offline(no_keras_cache: Path) -> None:
    dataset = load_dataset(DataConfig(allow_download=False), GRAY28)
    assert dataset.source == str(FASHION_MNIST)
    assert dataset.sizes() == {"train": 54000, "validation": 6000, "test": 10000}
    assert dataset.labels[0] == "T-shirt/top" and dataset.labels[9] == "Ankle boot"
    assert dataset.train.images.dtype == np.uint8 and dataset.train.images.shape[1:] == (28, 28, 1)


def test_not_found_and_download_failing_says_where_it_looked_and_how_to_get_it(
    tmp_path: Path, no_keras_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy nobody listens on makes the real Keras download fail at once, online or not.
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DataError) as caught:
        load_dataset(DataConfig(dataset="mnist", data_dir=tmp_path / "nowhere"), GRAY28)
    message = str(caught.value)
    assert "\n" not in message
    assert "mnist not found" in message and "download failed" in message
    for looked in (tmp_path / "nowhere", no_keras_cache / "datasets", Path("/usr/share/datasets")):
        assert str(looked) in message
    assert "--data-dir" in message


def test_downloads_can_be_switched_off(tmp_path: Path, no_keras_cache: Path) -> None:
    with pytest.raises(DataError, match="downloads are off"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=tmp_path, allow_download=False), InputSpec(32, 32, 3))


def test_unknown_dataset_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown dataset 'imagenet'"):
        DataConfig(dataset="imagenet")


# --- readers ----------------------------------------------------------------------------------


def test_mnist_npz_in_data_dir(tmp_path: Path, no_keras_cache: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y_train=np.arange(50) % 10,
        x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        y_test=np.arange(10),
    )
    dataset = load_dataset(DataConfig(dataset="mnist", data_dir=tmp_path), GRAY28)
    assert dataset.source == str(tmp_path / "mnist.npz")
    assert len(dataset.test) == 10 and dataset.labels == [str(d) for d in range(10)]


def test_cifar10_batches_in_data_dir(tmp_path: Path, no_keras_cache: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(np.arange(20) % 10)}
        (folder / name).write_bytes(pickle.dumps(batch))
    dataset = load_dataset(DataConfig(dataset="cifar10", data_dir=tmp_path), InputSpec(32, 32, 3))
    assert dataset.train.images.shape[1:] == (32, 32, 3)
    assert len(dataset.train) + len(dataset.validation) == 100 and len(dataset.test) == 20
    assert dataset.labels[3] == "cat"


def test_cifar_reader_refuses_pickles_that_run_code(tmp_path: Path, no_keras_cache: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Exploit:
        def __reduce__(self) -> tuple:
            return (print, ("owned",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        load_dataset(DataConfig(dataset="cifar10", data_dir=tmp_path), InputSpec(32, 32, 3))


def test_truncated_idx_file_is_a_data_error(tmp_path: Path, no_keras_cache: Path) -> None:
    _write_idx_set(tmp_path / "fashion-mnist")
    images = tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-100]))
    with pytest.raises(DataError, match="truncated IDX"):
        load_dataset(DataConfig(data_dir=tmp_path), GRAY28)


# --- splits -----------------------------------------------------------------------------------


def test_stratified_split_is_deterministic_disjoint_and_proportional() -> None:
    labels = np.repeat(np.arange(5), 100)
    kept, held = stratified_split(labels, 0.2, seed=3)
    again_kept, again_held = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(kept, again_kept) and np.array_equal(held, again_held)
    assert not set(kept) & set(held) and len(kept) + len(held) == 500
    assert np.all(np.bincount(labels[held]) == 20)
    _, other = stratified_split(labels, 0.2, seed=4)
    assert not np.array_equal(held, other)


def test_balanced_indices_spread_over_classes() -> None:
    labels = np.concatenate([np.zeros(500), np.ones(50), np.full(500, 2)]).astype(int)
    chosen = balanced_indices(labels, 90, seed=0)
    assert len(chosen) == len(set(chosen.tolist())) == 90
    assert np.all(np.bincount(labels[chosen]) == 30)


@requires_fashion_mnist
def test_validation_is_held_out_from_training_and_limit_is_class_balanced(no_keras_cache: Path) -> None:
    dataset = load_dataset(DataConfig(limit=1000, seed=5), GRAY28)
    assert len(dataset.train) == 900 and len(dataset.validation) == 100 and len(dataset.test) == 10000
    train_rows = {row.tobytes() for row in dataset.train.images}
    assert not any(row.tobytes() in train_rows for row in dataset.validation.images)
    assert np.all(np.bincount(dataset.validation.labels) == 10)


# --- image folders ----------------------------------------------------------------------------


def test_image_folder_with_mixed_formats_modes_and_sizes(image_folder: Path) -> None:
    spec = InputSpec(32, 32, 3)
    dataset = load_dataset(DataConfig(data_path=image_folder, seed=1), spec)
    assert dataset.labels == ["bag", "sneaker", "trouser"]
    assert dataset.sizes() == {"train": 72, "validation": 9, "test": 9}
    assert dataset.train.images.shape[1:] == (32, 32, 3) and not dataset.skipped
    again = load_dataset(DataConfig(data_path=image_folder, seed=1), spec)
    assert np.array_equal(dataset.test.images, again.test.images)
    native, labels = native_format(DataConfig(data_path=image_folder))
    assert labels == ["bag", "sneaker", "trouser"] and native.width >= 28


def test_image_folder_skips_a_few_bad_files_with_a_count(image_folder: Path) -> None:
    (image_folder / "bag" / "notes.txt").write_text("not an image")
    (image_folder / "bag" / "empty.png").write_bytes(b"")
    good = (image_folder / "bag" / "bag_000.png").read_bytes()
    (image_folder / "bag" / "truncated.png").write_bytes(good[: len(good) // 2])
    dataset = load_dataset(DataConfig(data_path=image_folder), InputSpec(28, 28, 1, "grayscale"))
    assert len(dataset.skipped) == 3
    assert any("truncated.png" in s for s in dataset.skipped) and any("empty.png" in s for s in dataset.skipped)
    assert sum(dataset.sizes().values()) == 90


def test_image_folder_with_mostly_bad_files_is_an_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / name / "ok.png")
        for index in range(4):
            (tmp_path / name / f"bad{index}.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError, match="8 of 10 files are not readable images"):
        load_dataset(DataConfig(data_path=tmp_path), GRAY28)
    for path in tmp_path.glob("*/ok.png"):
        path.unlink()
    with pytest.raises(DataError, match=r"none of the first 8 files is a readable image \(a/bad0\.jpg: "):
        native_format(DataConfig(data_path=tmp_path))  # the reason, not only the verdict


@pytest.mark.parametrize(
    ("layout", "error", "message"),
    [
        ({}, DataError, "has no class sub-folders"),
        ({"only": 5}, DataError, "has one class"),
        ({"a": 5, "b": 0}, DataError, "class folder has no images"),
        ({"a": 5, "b": 2}, DataError, "class 'b' has 2 usable images"),
    ],
)
def test_image_folder_structure_errors(tmp_path: Path, layout: dict[str, int], error: type, message: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "stray.png").write_bytes(b"")
    for name, count in layout.items():
        (root / name).mkdir()
        for index in range(count):
            Image.new("L", (10, 10), color=index * 20).save(root / name / f"{index}.png")
    with pytest.raises(error, match=message):
        load_dataset(DataConfig(data_path=root), GRAY28)


def test_missing_data_folder_is_a_data_error_exit_1(tmp_path: Path) -> None:
    """README: missing data is a failure (1), like an offline named dataset, not a usage error (2)."""
    with pytest.raises(DataError, match="no such folder") as caught:
        list_folder(tmp_path / "missing")
    assert caught.value.exit_code == 1


# --- the TensorFlow side ----------------------------------------------------------------------


def test_model_input_resizes_converts_colour_and_inverts() -> None:
    pixels = np.zeros((2, 28, 28, 1), np.uint8)
    pixels[:, :14] = 255
    out = model_input(pixels, InputSpec(56, 56, 3, invert=True)).numpy()
    assert out.shape == (2, 56, 56, 3) and out.dtype == np.float32
    assert out[0, 0, 0, 0] == 0.0 and out[0, -1, 0, 0] == 255.0  # inverted: top was white
    assert np.array_equal(out, np.round(out)), "model input holds whole pixel values, like a device feeds"


def test_augmentation_applies_only_when_training() -> None:
    from pipeline.data.dataset import DEFAULT_AUGMENTATION

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (16, 28, 28, 1), dtype=np.uint8), np.arange(16) % 2)
    plain = next(iter(tf_dataset(split, GRAY28, 16)))[0].numpy()
    evaluation = next(iter(tf_dataset(split, GRAY28, 16, augmentation=DEFAULT_AUGMENTATION)))[0].numpy()
    training = next(iter(tf_dataset(split, GRAY28, 16, training=True, augmentation=DEFAULT_AUGMENTATION, seed=1)))[
        0
    ].numpy()
    assert np.array_equal(plain, split.images.astype(np.float32))
    assert np.array_equal(evaluation, plain)
    assert training.min() >= 0 and training.max() <= 255
    assert not np.array_equal(np.sort(training.reshape(16, -1), axis=0), np.sort(plain.reshape(16, -1), axis=0))
