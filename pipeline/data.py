"""Datasets: named ones found on disk first (Fashion-MNIST, MNIST, CIFAR-10), and image folders.

Everything here returns plain numpy arrays of uint8 pixels; `tf_dataset` turns a split into
a batched, prefetched `tf.data` pipeline, with augmentation only when training.
"""

from __future__ import annotations

import gzip
import os
import pickle
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edge_runtime.errors import ImageError
from edge_runtime.images import is_image_file, open_image, prepare_pixels
from edge_runtime.model_folder import InputSpec

from .errors import DataError, UsageError

if TYPE_CHECKING:
    import tensorflow as tf

Progress = Callable[[int, int], None]
DEBIAN_DATASETS = Path("/usr/share/datasets")
MAX_BAD_FRACTION = 0.25
PEEK_IMAGES = 24
CACHE_BUDGET_BYTES = 1 << 30  # preprocessed evaluation data kept in memory up to 1 GiB


# --- configuration --------------------------------------------------------------------------

@dataclass(frozen=True)
class DataConfig:
    """Which data to use and how to split it."""

    dataset: str = "fashion-mnist"
    data_path: Path | None = None  # a folder of class sub-folders; replaces `dataset`
    data_dir: Path | None = None  # where to look first for named datasets
    validation_split: float = 0.1
    test_split: float = 0.1  # image folders only; named datasets have their own test set
    seed: int = 42
    limit: int | None = None  # use at most this many training+validation images
    allow_download: bool = True

    def __post_init__(self) -> None:
        if self.data_path is None and self.dataset not in NAMED_DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(NAMED_DATASETS)} or give --data FOLDER")
        for name, value in (("--validation-split", self.validation_split), ("--test-split", self.test_split)):
            if not 0.0 < value < 0.5:
                raise UsageError(f"{name} must be between 0 and 0.5 (exclusive), got {value}")
        if self.limit is not None and self.limit < 20:
            raise UsageError(f"--limit must be at least 20 images, got {self.limit}")

    @property
    def name(self) -> str:
        return self.data_path.resolve().name if self.data_path is not None else self.dataset

    def to_record(self) -> dict[str, Any]:
        """The `dataset` block of metadata.json (sizes are added by the caller)."""
        return {
            "name": self.name,
            "path": str(self.data_path.resolve()) if self.data_path is not None else None,
            "data_dir": str(self.data_dir) if self.data_dir is not None else None,
            "validation_split": self.validation_split,
            "test_split": self.test_split if self.data_path is not None else None,
            "seed": self.seed,
            "limit": self.limit,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], data_path: Path | None = None, data_dir: Path | None = None) -> DataConfig:
        """Rebuild the config a model was trained with; `data_path`/`data_dir` relocate the data."""
        path = data_path or (Path(record["path"]) if record.get("path") else None)
        directory = data_dir or (Path(record["data_dir"]) if record.get("data_dir") else None)
        return cls(
            dataset=record.get("name", "fashion-mnist") if path is None else "folder",
            data_path=path,
            data_dir=directory,
            validation_split=float(record.get("validation_split", 0.1)),
            test_split=float(record.get("test_split") or 0.1),
            seed=int(record.get("seed", 42)),
            limit=record.get("limit"),
        )


@dataclass(frozen=True)
class Augmentation:
    """Random changes to training images, as Keras preprocessing layers (training only)."""

    rotation: float = 0.0  # degrees either way
    shift: float = 0.0  # fraction of width/height
    zoom: float = 0.0  # fraction
    shear: float = 0.0  # fraction
    flip: bool = False  # horizontal; never for digits or text

    @property
    def enabled(self) -> bool:
        return bool(self.rotation or self.shift or self.zoom or self.shear or self.flip)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


# The seeds' recipe (rotation, shift, shear, zoom); flips are opt-in because digits must not flip.
DEFAULT_AUGMENTATION = Augmentation(rotation=10.0, shift=0.1, zoom=0.1, shear=0.1)


# --- loaded data ------------------------------------------------------------------------------

@dataclass
class Split:
    """Images (N, height, width, channels) uint8 and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Split:
        return Split(self.images[indices], self.labels[indices])


@dataclass
class Dataset:
    """A dataset split three ways, with its labels and where it came from."""

    name: str
    labels: list[str]
    train: Split
    validation: Split
    test: Split
    source: str
    skipped: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


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

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
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
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    offset = 4 + 4 * len(dims)
    if len(data) - offset != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({len(data) - offset} of {int(np.prod(dims))} bytes)")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _idx_location(folder: Path) -> Path | None:
    for name in (*IDX_FILES, *(n.removesuffix(".gz") for n in IDX_FILES)):
        if (folder / name).is_file():
            return folder if all((folder / n).is_file() or (folder / n.removesuffix(".gz")).is_file() for n in IDX_FILES) else None
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

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")})

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
        except Exception as error:  # noqa: BLE001 - any download failure gets the same advice
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(f"{self.name} not found (looked in {looked}) and the download failed ({reason[:120]}); {self.how_to_get}") from None
        if x_train.ndim == 3:
            x_train, x_test = x_train[..., None], x_test[..., None]
        return (x_train, y_train.reshape(-1), x_test, y_test.reshape(-1)), f"downloaded by keras.datasets.{self.keras_loader}"


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
        (("cifar-10-batches-py-target/cifar-10-batches-py", _read_cifar_folder),
         ("cifar-10-batches-py", _read_cifar_folder), ("", _read_cifar_folder)),
        "cifar10",
        "extract cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) and pass "
        "--data-dir pointing at its cifar-10-batches-py folder",
    ),
}


# --- image folders ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FolderListing:
    """Class names and the candidate files of each class, in a stable order."""

    root: Path
    classes: list[str]
    files: list[list[Path]]


def list_folder(root: Path) -> FolderListing:
    """Find class sub-folders and their files; structural problems are one-line errors."""
    root = Path(root)
    if not root.exists():
        raise UsageError(f"{root}: no such folder; --data wants a folder with one sub-folder per class")
    if not root.is_dir():
        raise UsageError(f"{root}: is a file; --data wants a folder with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: has no class sub-folders; put the images of each class in their own folder ({root}/cat/*.jpg, {root}/dog/*.jpg, ...)")
    if len(class_dirs) < 2:
        raise DataError(f"{root}: has one class ({class_dirs[0].name}); a classifier needs at least two class folders")
    files = []
    for class_dir in class_dirs:
        found = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not found:
            raise DataError(f"{class_dir}: class folder has no images; add some or remove the folder")
        files.append(found)
    return FolderListing(root, [d.name for d in class_dirs], files)


def peek_folder(listing: FolderListing) -> NativeFormat:
    """Typical size and colour of a folder's images, from the headers of a few of them."""
    sizes, gray = [], 0
    sample = [f for files in listing.files for f in files[: max(1, PEEK_IMAGES // len(listing.files))]]
    for path in sample:
        if not is_image_file(path):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from PIL import Image

                with Image.open(path) as image:
                    sizes.append(image.size)
                    gray += image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        except Exception:  # noqa: BLE001 - a bad file is reported when the folder is loaded
            continue
    if not sizes:
        raise DataError(f"{listing.root}: none of the first files could be read as images")
    width = int(np.median([s[0] for s in sizes]))
    height = int(np.median([s[1] for s in sizes]))
    return NativeFormat(height, width, 1 if gray == len(sizes) else 3)


def _decode(path: Path, spec: InputSpec) -> np.ndarray | str:
    try:
        return prepare_pixels(open_image(path, draft_size=(spec.width, spec.height)), spec, invert=False)
    except ImageError as error:
        return str(error)


def load_folder(listing: FolderListing, spec: InputSpec, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every file at the model's size (the device's code path); bad files are skipped.

    Returns images, labels, and one message per skipped file. Raises DataError when too
    many files are bad or a class is left with none.
    """
    jobs = [(path, label) for label, files in enumerate(listing.files) for path in files]
    images, labels, skipped = [], [], []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for done, ((_, label), result) in enumerate(zip(jobs, pool.map(lambda job: _decode(job[0], spec), jobs), strict=True), start=1):
            if isinstance(result, str):
                skipped.append(result)
            else:
                images.append(result)
                labels.append(label)
            if progress is not None:
                progress(done, len(jobs))
    if len(skipped) > MAX_BAD_FRACTION * len(jobs):
        raise DataError(f"{listing.root}: {len(skipped)} of {len(jobs)} files are not readable images (first: {skipped[0]}); fix or remove them")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(listing.classes))
    for name, count in zip(listing.classes, counts, strict=True):
        if count == 0:
            raise DataError(f"{listing.root / name}: none of its files is a readable image")
    return np.stack(images), np.asarray(labels, dtype=np.int64), skipped


# --- splits ------------------------------------------------------------------------------------

def stratified_split(labels: np.ndarray, fraction: float, seed: int, minimum: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): `fraction` of every class held out, in a seeded order."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = max(minimum, round(len(members) * fraction))
        held.append(members[:count])
        kept.append(members[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def balanced_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices spread as evenly over the classes as they allow (seeded)."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == label))) for label in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop()))
    return np.asarray(sorted(chosen), dtype=np.int64)


def _check_class_sizes(labels: np.ndarray, names: list[str], needed: int, why: str) -> None:
    counts = np.bincount(labels, minlength=len(names))
    for name, count in zip(names, counts, strict=True):
        if count < needed:
            raise DataError(f"class {name!r} has {count} usable images; {why} needs at least {needed}")


def native_format(config: DataConfig) -> tuple[NativeFormat, list[str]]:
    """Image format and labels of the configured data, without decoding it all."""
    if config.data_path is not None:
        listing = list_folder(config.data_path)
        return peek_folder(listing), listing.classes
    named = NAMED_DATASETS[config.dataset]
    return named.native, list(named.labels)


def load_dataset(config: DataConfig, spec: InputSpec, progress: Progress | None = None) -> Dataset:
    """Load and split the configured data. Image folders are decoded at the model's size."""
    if config.data_path is not None:
        listing = list_folder(config.data_path)
        images, labels, skipped = load_folder(listing, spec, progress)
        _check_class_sizes(labels, listing.classes, 3, "a training/validation/test split")
        pool, test = stratified_split(labels, config.test_split, config.seed, minimum=1)
        names, source = listing.classes, str(listing.root.resolve())
        x_pool, y_pool, x_test, y_test = images[pool], labels[pool], images[test], labels[test]
    else:
        named = NAMED_DATASETS[config.dataset]
        (x_pool, y_pool, x_test, y_test), source = named.load(config.data_dir, config.allow_download)
        names, skipped = list(named.labels), []
        y_pool, y_test = y_pool.astype(np.int64), y_test.astype(np.int64)
    if config.limit is not None and config.limit < len(y_pool):
        keep = balanced_indices(y_pool, config.limit, config.seed)
        x_pool, y_pool = x_pool[keep], y_pool[keep]
    _check_class_sizes(y_pool, names, 2, "a training/validation split")
    train, validation = stratified_split(y_pool, config.validation_split, config.seed + 1, minimum=1)
    return Dataset(
        name=config.name,
        labels=names,
        train=Split(x_pool[train], y_pool[train]),
        validation=Split(x_pool[validation], y_pool[validation]),
        test=Split(x_test, y_test),
        source=source,
        skipped=skipped,
    )


# --- TensorFlow side ---------------------------------------------------------------------------

def model_input(images: tf.Tensor, spec: InputSpec) -> tf.Tensor:
    """uint8 pixels (N, h, w, c) to the float32 raw pixels (0..255) a model takes.

    Resizes, converts grayscale/RGB and inverts as `spec` says, then rounds to whole values,
    so the model sees what a device feeds it: uint8 pixels.
    """
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    channels = x.shape[-1]
    if channels == 1 and spec.channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    elif channels == 3 and spec.channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    if x.shape[1] != spec.height or x.shape[2] != spec.width:
        x = tf.clip_by_value(tf.round(tf.image.resize(x, (spec.height, spec.width), method="bilinear")), 0.0, 255.0)
    if spec.invert:
        x = 255.0 - x
    return x


def model_input_array(images: np.ndarray, spec: InputSpec, batch_size: int = 512) -> np.ndarray:
    """`model_input` for a numpy array, in batches, as float32 numpy (for conversion and evaluation)."""
    parts = [model_input(images[start:start + batch_size], spec).numpy() for start in range(0, len(images), batch_size)]
    if not parts:
        return np.zeros((0, spec.height, spec.width, spec.channels), np.float32)
    return np.concatenate(parts)


def augmenter(augmentation: Augmentation, seed: int) -> Any:
    """The Keras preprocessing layers for `augmentation` (applied in training only)."""
    import keras

    layers: list[Any] = []
    if augmentation.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augmentation.rotation:
        layers.append(keras.layers.RandomRotation(augmentation.rotation / 360.0, fill_mode="nearest", seed=seed + 1))
    if augmentation.shear:
        layers.append(keras.layers.RandomShear(augmentation.shear, augmentation.shear, fill_mode="nearest", seed=seed + 2))
    if augmentation.shift:
        layers.append(keras.layers.RandomTranslation(augmentation.shift, augmentation.shift, fill_mode="nearest", seed=seed + 3))
    if augmentation.zoom:
        layers.append(keras.layers.RandomZoom(augmentation.zoom, augmentation.zoom, fill_mode="nearest", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")


def tf_dataset(split: Split, spec: InputSpec, batch_size: int, *, training: bool = False,
               augmentation: Augmentation | None = None, seed: int = 0) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline of (raw pixels float32, label).

    The images are in memory already; evaluation pipelines also cache their preprocessed
    (resized, converted) batches when they fit CACHE_BUDGET_BYTES, so validation after every
    epoch does not resize the same images again. Training batches are not cached: they are
    reshuffled and augmented anew each epoch.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    if training:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (model_input(x, spec), y), num_parallel_calls=autotune)
    if not training and len(split) * spec.height * spec.width * spec.channels * 4 <= CACHE_BUDGET_BYTES:
        dataset = dataset.cache()
    if training and augmentation is not None and augmentation.enabled:
        layers = augmenter(augmentation, seed)
        dataset = dataset.map(lambda x, y: (tf.clip_by_value(layers(x, training=True), 0.0, 255.0), y), num_parallel_calls=autotune)
    # With the autotuner on (TF 2.21), destroying an epoch's iterator waits up to ~20 s for the
    # autotuning thread while the CPU idles: half of every other epoch lost. Fixed parallelism
    # keeps epochs steady (measured: 41 s -> 22 s per Fashion-MNIST cnn epoch on 2 cores).
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(autotune).with_options(options)
