"""What a source is, and loading it without running anything it carries unasked.

A source is untrusted input, as a model folder is: a `.keras` or `.h5` file's layer configuration is read as JSON
first, and a Lambda layer (Python bytecode) or a class nobody registered is refused in one line naming it, before
Keras deserializes anything; Keras then loads with `safe_mode=True`, always. `--custom-objects FILE.py` is the one
opt-in: that file is run, and the classes and functions it defines are what the model may name. A `.tflite` file is
checked by edge_runtime's structure check before an interpreter parses it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import runpy
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.backends import load_interpreter, read_model_bytes
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.folder.reader import sha256_file
from edge_runtime.safe_files import zip_directory

from ..errors import SourceError, UsageError

KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}
SAVED_MODEL_FILE = "saved_model.pb"
WEIGHTS_MEMBER = "model.weights.h5"  # a .keras zip's weights, an .h5 file inside
MAX_CONFIG_BYTES = 64 << 20  # a model's layer configuration, as JSON
MAX_KERAS_MEMBERS, MAX_KERAS_DIRECTORY = 10_000, 4 << 20  # a .keras holds 3 members (a million took 1.29 GB)
MAX_UNSTORED = 16 << 20  # bytes a dataset of an .h5 may declare beyond 64x what it stores (compression)
LAMBDA = "Lambda"


@dataclass(frozen=True)
class Source:
    """A model to import: where it is, what kind, its checksum and the framework that wrote it."""

    path: Path
    kind: str  # SourceRecord's kinds: keras, h5, saved-model, tflite, tflite-quantized
    sha256: str
    framework: str
    version: str

    @property
    def is_tflite(self) -> bool:
        return self.kind.startswith("tflite")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def identify(path: Path) -> Source:
    """The kind of `path` by what it is; every other thing is one line saying what import takes."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; import takes a .keras, .h5 or .tflite file or a SavedModel")
    if path.is_dir():
        if (path / "metadata.json").is_file():
            raise UsageError(f"{path}: is a model folder already; convert, evaluate and the rest take it as it is")
        if not (path / SAVED_MODEL_FILE).is_file():
            raise UsageError(f"{path}: a folder without {SAVED_MODEL_FILE}, so not a SavedModel")
        return Source(path, "saved-model", sha256_file(path / SAVED_MODEL_FILE), "tensorflow", _version("tensorflow"))
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES and not path.is_file():  # /dev/zero named mine.h5 was read for ever
        raise UsageError(f"{path}: not a regular file; import takes a .keras or .h5 file")
    if suffix in KERAS_SUFFIXES:
        return Source(path, KERAS_SUFFIXES[suffix], sha256_file(path), "keras", _version("keras"))
    if suffix == ".tflite":
        try:
            interpreter, _ = load_interpreter(path)
        except EdgeRuntimeError as error:
            raise SourceError(str(error)) from None
        quantized = np.dtype(interpreter.get_input_details()[0]["dtype"]) in (np.int8, np.uint8)
        return Source(path, "tflite-quantized" if quantized else "tflite", sha256_file(path), "tflite", "")
    raise UsageError(
        f"{path}: not a model import takes (.keras, .h5, .tflite, or a SavedModel folder); for PyTorch or ONNX make a "
        "float32 .tflite first (docs/import.md)"
    )


# --- Keras: the configuration read before anything is deserialized ------------------------------------


def _keras_config(path: Path, kind: str) -> Any:
    """The model's layer configuration as JSON: config.json of a .keras zip, `model_config` of an .h5."""
    try:
        if kind == "keras":
            with open(path, "rb") as stream:
                members, directory = zip_directory(stream) or (0, 0)
            if members > MAX_KERAS_MEMBERS or directory > MAX_KERAS_DIRECTORY:
                raise SourceError(f"{path}: its zip lists {members:,} members in {directory:,} bytes; a .keras has a "
                                  f"handful (over {MAX_KERAS_MEMBERS:,} is refused before it is read)")  # fmt: skip
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise SourceError(f"{path}: its config.json is {info.file_size >> 20} MB, over the 64 MB limit")
                with archive.open(info) as member:  # in bounded reads: the recorded size can lie (a 1.1 GB
                    text = bytearray()  # stream recorded as 1,000 bytes took 2.7 GB read whole)
                    while chunk := member.read(1 << 20):
                        text += chunk
                        if len(text) > MAX_CONFIG_BYTES:
                            raise SourceError(f"{path}: its config.json is over the 64 MB limit")
                config = json.loads(bytes(text))
                if WEIGHTS_MEMBER in archive.namelist():  # Keras reads it as it reads an .h5: whole datasets
                    import h5py

                    with archive.open(WEIGHTS_MEMBER) as member, h5py.File(member, "r") as h5:
                        _check_declared_weights(h5, path)
                return config
        import h5py

        with h5py.File(path, "r") as h5:
            _check_declared_weights(h5, path)
            text = h5.attrs.get("model_config")
            if text is None:
                raise SourceError(
                    f"{path}: holds weights only, no model; build the model in code, load_weights() this file, and "
                    "save it with model.save('model.keras')"
                )
            return json.loads(text.decode() if isinstance(text, bytes) else text)
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as error:
        raise SourceError(f"{path}: not a readable {kind} model file ({str(error)[:120]})") from None
    except RecursionError:
        raise SourceError(f"{path}: its layer configuration nests deeper than any model's (a hostile file?)") from None


def _check_declared_weights(h5: Any, path: Path) -> None:
    """Refuse an .h5 whose datasets declare far more than they store: Keras reads each whole before it checks a
    shape (a 64 KB file declaring a 1.5 GB kernel peaked at 2.19 GB). Saved weights store what they declare."""
    import h5py

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            declared = int(item.size or 0) * item.dtype.itemsize  # an empty (null) dataspace has no size
            stored = int(item.id.get_storage_size())
            if declared > MAX_UNSTORED + stored * 64:
                raise SourceError(f"{path}: dataset {name!r} declares {declared:,} bytes and stores {stored:,}; "
                                  "saved weights store what they declare (a hostile or damaged file?)")  # fmt: skip

    h5.visititems(visit)


def _layers(config: Any) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every object of the configuration that names a class (layers, nested models, their parts), with the name
    of the nearest layer holding it (its own, for a layer)."""
    stack: list[tuple[Any, str | None]] = [(config, None)]
    while stack:
        item, owner = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                inner = item.get("config")
                name = inner.get("name") if isinstance(inner, dict) else None
                owner = name if isinstance(name, str) else owner
                yield item, owner
            stack.extend((value, owner) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, owner) for value in item)


def _is_keras_own(layer: dict[str, Any]) -> bool:
    """Keras' own classes: module keras.* (or none) and no registered name outside Keras ("package>Name")."""
    module, registered = layer.get("module"), layer.get("registered_name")
    if isinstance(registered, str) and ">" in registered and registered.partition(">")[0] != "keras":
        return False  # a class registered by the user's code: its module is often null
    return module is None or (isinstance(module, str) and (module == "keras" or module.startswith("keras.")))


def check_layers(path: Path, kind: str, custom: dict[str, Any]) -> None:
    """Refuse a Lambda layer, and a class the file registers that no --custom-objects file defines, by name."""
    for layer, owner in _layers(_keras_config(path, kind)):
        what = f"layer {owner!r}" if owner else "the model"
        if layer["class_name"] == LAMBDA:
            raise SourceError(
                f"{path}: {what} is a Lambda (Python bytecode in the file, which would run on loading); "
                "replace it with a layer class defined in a file given to --custom-objects, or convert the model to "
                ".tflite yourself and import that"
            )
        registered = layer.get("registered_name")
        wanted = registered if isinstance(registered, str) and registered else layer["class_name"]
        if not _is_keras_own(layer) and wanted not in custom and layer["class_name"] not in custom:
            inner = layer.get("config")
            uses = "is" if isinstance(inner, dict) and inner.get("name") == owner else "uses"  # a layer, or inside one
            raise SourceError(
                f"{path}: {what} {uses} a custom class {wanted!r} that Keras cannot build alone; give the file "
                "defining it with --custom-objects FILE.py (that file is run)"
            )


def custom_objects(file: Path | None) -> dict[str, Any]:
    """The classes and functions a --custom-objects file defines, by name (and by Keras' registered name)."""
    if file is None:
        return {}
    if not Path(file).is_file() or Path(file).suffix != ".py":
        raise UsageError(f"--custom-objects {file}: not a .py file")
    namespace = runpy.run_path(str(file), run_name="edge_pipeline_custom_objects")
    found = {k: v for k, v in namespace.items() if not k.startswith("_") and (isinstance(v, type) or callable(v))}
    found = {k: v for k, v in found.items() if getattr(v, "__module__", "") == "edge_pipeline_custom_objects"}
    import keras

    for value in list(found.values()):
        registered = keras.saving.get_registered_name(value)
        found.setdefault(registered, value)
    return found


def load_keras(source: Source, custom_file: Path | None) -> Any:
    """The Keras model of a .keras or .h5 file, its layers checked first, loaded with safe_mode=True."""
    custom = custom_objects(custom_file)
    check_layers(source.path, source.kind, custom)
    import keras

    try:
        return keras.saving.load_model(source.path, compile=False, safe_mode=True, custom_objects=custom or None)
    except Exception as error:  # noqa: BLE001 - Keras raises anything for a file it cannot build
        reason = " ".join(str(error).split())[:300]
        raise SourceError(f"{source.path}: Keras cannot load it ({type(error).__name__}: {reason})") from None


def checksum_of_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def tflite_bytes(source: Source) -> bytes:
    """A .tflite source's bytes, checked by edge_runtime's structure check (identify loaded it once already)."""
    try:
        return read_model_bytes(source.path)
    except EdgeRuntimeError as error:
        raise SourceError(str(error)) from None


# --- the input: one image, NHWC, a known size -------------------------------------------------------


def image_input(shapes: list[list[int | None]], input_size: int | None, where: Path) -> tuple[int, int, int]:
    """(height, width, channels) of a source's one image input; every other input is one line saying what to do."""
    if len(shapes) != 1:
        raise SourceError(
            f"{where}: has {len(shapes)} inputs; import takes image classifiers with one image input (wrap the model "
            "so that it takes the image alone)"
        )
    shape = list(shapes[0])
    if len(shape) != 4:
        raise SourceError(
            f"{where}: its input has shape {_shape(shape)}, not an image batch (N, height, width, channels)"
        )
    height, width, channels = shape[1:]
    if channels not in (1, 3):
        if height in (1, 3):
            raise SourceError(
                f"{where}: its input {_shape(shape)} is channels-first (NCHW); export it channels-last (NHWC), e.g. "
                "litert-torch's to_channel_last_io or a wrapper that transposes (docs/import.md)"
            )
        raise SourceError(f"{where}: its input {_shape(shape)} has {channels} channels; images have 1 or 3")
    if height is None or width is None or height < 1 or width < 1:
        if input_size is None:
            raise UsageError(
                f"{where}: its input {_shape(shape)} takes any height and width; say which with --input-size N"
            )
        return input_size, input_size, int(channels)
    if input_size is not None and (input_size, input_size) != (height, width):
        raise UsageError(f"--input-size {input_size}: {where} takes {height}x{width} images, not another size")
    return int(height), int(width), int(channels)


def _shape(shape: list[int | None]) -> str:
    return "(" + ", ".join("None" if v is None or v < 0 else str(v) for v in shape) + ")"
