"""Named datasets found on disk first (Fashion-MNIST, MNIST, CIFAR-10), downloaded by Keras only as a last resort."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DataError, cause

DEBIAN_DATASETS = Path("/usr/share/datasets")


@dataclass(frozen=True)
class NativeFormat:
    """What a dataset's images are before any model-specific resizing."""

    height: int
    width: int
    channels: int

    @property
    def color(self) -> str:
        return "grayscale" if self.channels == 1 else "rgb"


# --- named datasets ---------------------------------------------------------------------------

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read ({error}); the file is damaged, download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(data[3])]
    offset = 4 + 4 * len(dims)
    if len(data) - offset != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({len(data) - offset} of {int(np.prod(dims))} bytes)")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _idx_location(folder: Path) -> Path | None:
    for name in (*IDX_FILES, *(n.removesuffix(".gz") for n in IDX_FILES)):
        if (folder / name).is_file():
            return (
                folder
                if all((folder / n).is_file() or (folder / n.removesuffix(".gz")).is_file() for n in IDX_FILES)
                else None
            )
    return None


def _read_idx_folder(folder: Path) -> Arrays:
    def one(name: str) -> np.ndarray:
        path = folder / name
        return _read_idx(path if path.is_file() else folder / name.removesuffix(".gz"))

    x_train, y_train, x_test, y_test = (one(name) for name in IDX_FILES)
    return x_train[..., None], y_train, x_test[..., None], y_test


def _read_mnist_npz(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["x_train"][..., None], data["y_train"], data["x_test"][..., None], data["y_test"]
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a readable mnist.npz ({error})") from None


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches while refusing anything but numpy arrays (pickles can run code)."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as stream:
            batch = _CifarUnpickler(stream, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return data, np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({error})") from None


def _read_cifar_folder(folder: Path) -> Arrays:
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: its labels, image format, where copies live, how to get one."""

    name: str
    labels: tuple[str, ...]
    native: NativeFormat
    # (relative path to try under each search folder, reader for what is found there)
    layouts: tuple[tuple[str, Callable[[Path], Arrays]], ...]
    keras_loader: str
    how_to_get: str

    def search_folders(self, data_dir: Path | None) -> list[Path]:
        """Where local copies are looked for, in order."""
        folders = []
        if data_dir is not None:
            folders.append(Path(data_dir))
        keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
        folders.append(keras_home / "datasets")
        folders.append(DEBIAN_DATASETS)
        return folders

    def find_local(self, data_dir: Path | None) -> tuple[Path, Callable[[Path], Arrays]] | None:
        for folder in self.search_folders(data_dir):
            for relative, reader in self.layouts:
                candidate = folder / relative if relative else folder
                if relative.endswith(".npz") and candidate.is_file():
                    return candidate, reader
                if candidate.is_dir():
                    if reader is _read_idx_folder and _idx_location(candidate) is None:
                        continue
                    if reader is _read_cifar_folder and not (candidate / "test_batch").is_file():
                        continue
                    return candidate, reader
        return None

    def load(self, data_dir: Path | None, allow_download: bool) -> tuple[Arrays, str]:
        """Arrays (x_train, y_train, x_test, y_test) and where they came from."""
        found = self.find_local(data_dir)
        if found is not None:
            location, reader = found
            return reader(location), str(location)
        looked = ", ".join(str(f) for f in self.search_folders(data_dir))
        if not allow_download:
            raise DataError(f"{self.name} not found (looked in {looked}) and downloads are off; {self.how_to_get}")
        try:
            import keras

            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, self.keras_loader).load_data()
        except Exception as error:
            raise DataError(
                f"{self.name} not found (looked in {looked}) and the download failed ({cause(error)}); "
                f"{self.how_to_get}"
            ) from error
        if x_train.ndim == 3:
            x_train, x_test = x_train[..., None], x_test[..., None]
        return (
            x_train,
            y_train.reshape(-1),
            x_test,
            y_test.reshape(-1),
        ), f"downloaded by keras.datasets.{self.keras_loader}"


_IDX_LAYOUTS = (("", _read_idx_folder),)
NAMED_DATASETS: dict[str, NamedDataset] = {
    "fashion-mnist": NamedDataset(
        "fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        NativeFormat(28, 28, 1),
        (("fashion-mnist", _read_idx_folder), *_IDX_LAYOUTS),
        "fashion_mnist",
        "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or put the four "
        "*-idx*-ubyte.gz files in a folder and pass --data-dir FOLDER",
    ),
    "mnist": NamedDataset(
        "mnist",
        tuple(str(d) for d in range(10)),
        NativeFormat(28, 28, 1),
        (("mnist.npz", _read_mnist_npz), ("mnist", _read_idx_folder), *_IDX_LAYOUTS),
        "mnist",
        "put mnist.npz (from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz) "
        "or the four *-idx*-ubyte.gz files in a folder and pass --data-dir FOLDER",
    ),
    "cifar10": NamedDataset(
        "cifar10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        NativeFormat(32, 32, 3),
        (
            ("cifar-10-batches-py-target/cifar-10-batches-py", _read_cifar_folder),
            ("cifar-10-batches-py", _read_cifar_folder),
            ("", _read_cifar_folder),
        ),
        "cifar10",
        "extract cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and pass "
        "--data-dir pointing at its cifar-10-batches-py folder",
    ),
}
