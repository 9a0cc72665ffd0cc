"""Image folders streamed from disk: the same splits and pixels as in memory, bad files counted, the cache reused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.folder.reader import InputSpec
from pipeline.data.dataset import DataConfig, load_dataset
from pipeline.data.streamed import DiskImages
from tests.conftest import requires_fashion_mnist, write_image_folder

GRAY28 = InputSpec(28, 28, 1, "grayscale")


def _with_bad_files(folder: Path) -> Path:
    """Unreadable files in the middle of the class folders (sorted among the good ones)."""
    (folder / "bag" / "bag_010_notes.txt").write_text("not an image")
    good = (folder / "sneaker" / "sneaker_000.png").read_bytes()
    (folder / "sneaker" / "sneaker_015_truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "trouser" / "trouser_020_empty.jpg").write_bytes(b"")
    return folder


def test_streamed_folder_has_the_same_splits_and_pixels_as_in_memory(image_folder: Path) -> None:
    folder = _with_bad_files(image_folder)
    streamed = load_dataset(DataConfig(data_path=folder, seed=3), GRAY28)
    held = load_dataset(DataConfig(data_path=folder, seed=3, stream=False), GRAY28)
    assert isinstance(streamed.train.images, DiskImages) and isinstance(held.train.images, np.ndarray)
    assert streamed.files == held.files and streamed.sizes() == held.sizes() == {
        "train": 72,
        "validation": 9,
        "test": 9,
    }
    assert len(streamed.skipped) == len(held.skipped) == 3  # counted, not fatal
    assert sorted(streamed.files["unused"]) == sorted(held.files["unused"])
    for split in ("train", "validation", "test"):
        ours, theirs = getattr(streamed, split), getattr(held, split)
        np.testing.assert_array_equal(np.asarray(ours.images), theirs.images)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    picked = np.array([5, 0, 3])
    np.testing.assert_array_equal(streamed.train.images[picked], held.train.images[picked])
    np.testing.assert_array_equal(streamed.test.images[2:5], held.test.images[2:5])


def test_cache_dir_is_reused_and_a_changed_folder_decodes_anew(image_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    decoded: list[int] = []
    config = DataConfig(data_path=image_folder, cache=cache)
    first = load_dataset(config, GRAY28, lambda done, total: decoded.append(done))
    assert decoded and len(list(cache.glob("*.u8"))) == 1
    stored = next(cache.glob("*.u8"))
    assert stored.stat().st_size == 90 * 28 * 28  # every image once, at the model's size
    decoded.clear()
    again = load_dataset(config, GRAY28, lambda done, total: decoded.append(done))
    assert not decoded and np.array_equal(np.asarray(again.test.images), np.asarray(first.test.images))
    (image_folder / "bag" / "bag_000.png").touch()
    os.utime(image_folder / "bag" / "bag_000.png", (1, 1))  # the same name, another file
    load_dataset(config, GRAY28, lambda done, total: decoded.append(done))
    assert decoded and len(list(cache.glob("*.u8"))) == 2
    assert not list(cache.glob(".*partial*"))  # written to a temporary name, then renamed


def test_a_cache_dir_that_cannot_be_made_is_one_line(image_folder: Path, tmp_path: Path) -> None:
    from pipeline.errors import DataError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match=r"^--cache .*file/cache: cannot create the folder"):
        load_dataset(DataConfig(data_path=image_folder, cache=blocker / "cache"), GRAY28)


@pytest.mark.slow
@requires_fashion_mnist
def test_training_streamed_matches_training_in_memory(
    tmp_path: Path, fashion_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    """Same splits, same seeded order: the two paths train to the same accuracy (within one test image)."""
    from pipeline.training.stage import HyperParams, TrainConfig, train

    images, labels = fashion_arrays
    folder = write_image_folder(tmp_path / "photos", images, labels, {0: "top", 1: "trouser", 7: "sneaker"}, 120)
    _with_bad_files_generic(folder)
    results = {}
    for stream in (True, False):
        data = DataConfig(data_path=folder, stream=stream, test_split=0.2)
        out = tmp_path / f"model-{stream}"
        results[stream] = train(TrainConfig(data=data, hparams=HyperParams(epochs=3, batch_size=16), output=out))
    test_images = json.loads((tmp_path / "model-True" / "metadata.json").read_text())["dataset"]["sizes"]["test"]
    assert json.loads((tmp_path / "model-True" / "split.json").read_text()) == json.loads(
        (tmp_path / "model-False" / "split.json").read_text()
    )
    assert abs(results[True].test_accuracy - results[False].test_accuracy) <= 1 / test_images + 1e-9
    assert results[True].test_accuracy > 0.8


def _with_bad_files_generic(folder: Path) -> None:
    for index, name in enumerate(sorted(p.name for p in folder.iterdir())):
        (folder / name / f"{name}_05{index}_broken.jpg").write_bytes(b"\xff\xd8 broken")


def test_later_stages_read_the_file_training_decoded(image_folder: Path, tmp_path: Path) -> None:
    """A recorded split (convert, evaluate) narrows the cached folder instead of decoding its subset again."""
    folder = _with_bad_files(image_folder)
    cache = tmp_path / "cache"
    trained = load_dataset(DataConfig(data_path=folder, cache=cache, limit=60), GRAY28)
    assert trained.files is not None and trained.files["unused"]  # bad files and the ones --limit left out
    decoded: list[int] = []
    later = load_dataset(
        DataConfig(data_path=folder, cache=cache, limit=60), GRAY28, lambda d, t: decoded.append(d), trained.files
    )
    assert not decoded and len(list(cache.glob("*.u8"))) == 1
    assert later.sizes() == trained.sizes()
    np.testing.assert_array_equal(np.asarray(later.test.images), np.asarray(trained.test.images))
    np.testing.assert_array_equal(later.train.labels, trained.train.labels)
