"""`edge-pipeline import` on hostile source files: each refused in one line before anything reads what it claims
(no data needed: the source is checked before the data is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline


def _hostile_keras(tmp: Path) -> list[tuple[Path, str]]:
    """A .keras whose config.json's recorded size lies (100 MB of zeros recorded as 1,000 bytes: read whole, the
    2.7 GB peak of a 1.1 GB one), one nested 100,000 deep, and a device named like a model."""
    import struct
    import zipfile

    forged = tmp / "forged.keras"
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("config.json", "w") as member:
        for _ in range(100):
            member.write(bytes(1 << 20))
    data = bytearray(forged.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)  # the central directory's uncompressed size
    struct.pack_into("<I", data, struct.unpack_from("<I", data, central + 42)[0] + 22, 1000)  # the local header's
    descriptor = data.rfind(b"PK\x07\x08")
    if descriptor >= 0:
        struct.pack_into("<I", data, descriptor + 12, 1000)
    forged.write_bytes(bytes(data))
    deep = tmp / "deep.keras"
    with zipfile.ZipFile(deep, "w") as archive:
        archive.writestr("config.json", "[" * 100_000 + "]" * 100_000)
    device = tmp / "zero.h5"
    device.symlink_to("/dev/zero")
    crowded = tmp / "crowded.keras"  # a million members took 1.29 GB to list
    with zipfile.ZipFile(crowded, "w") as archive:
        for index in range(10_001):
            archive.writestr(f"{index}", b"")
    import h5py

    declared = tmp / "declared.h5"  # a 1.5 GB kernel declared, nothing stored: Keras read it whole (2.19 GB)
    with h5py.File(declared, "w") as h5:
        h5.create_dataset("model_weights/dense/kernel", shape=(98304, 4096), dtype="float32")
    empty = tmp / "empty.h5"  # a null dataspace has no size: it was a TypeError's traceback
    with h5py.File(empty, "w") as h5:
        h5.create_dataset("model_weights/dense/kernel", data=h5py.Empty("f4"))
    return [(forged, "not a readable keras model file (Bad CRC-32"), (deep, "nests deeper than any model's"),
            (device, "not a regular file"), (crowded, "its zip lists 10,001 members"),
            (declared, "declares 1,610,612,736 bytes and stores 0"), (empty, "holds weights only"),
            (_declared_inside_keras(tmp), "dataset 'layers/dense/vars/0' declares 1,610,612,736 bytes")]  # fmt: skip


def _declared_inside_keras(tmp: Path) -> Path:
    """The same declared kernel as a real .keras' model.weights.h5: Keras peaked at 7.0 GB reading it."""
    import io
    import zipfile

    import h5py
    import keras

    image = keras.Input((8, 8, 3))
    keras.Model(image, keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(image))).save(tmp / "plain.keras")
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", shape=(98304, 4096), dtype="float32")
        h5.create_dataset("layers/dense/vars/1", shape=(3,), dtype="float32")
    with zipfile.ZipFile(tmp / "plain.keras") as source, zipfile.ZipFile(tmp / "inside.keras", "w") as forged:
        for name in source.namelist():
            forged.writestr(name, weights.getvalue() if name == "model.weights.h5" else source.read(name))
    return tmp / "inside.keras"


def test_hostile_keras_files_are_one_line_without_reading_what_they_claim(tmp_path: Path) -> None:
    for path, message in _hostile_keras(tmp_path):
        with pytest.raises(pipeline.PipelineError) as raised:
            pipeline.import_model(path, data=tmp_path / "none", output=tmp_path / "out", progress=False)
        assert message in str(raised.value) and "\n" not in str(raised.value), (path.name, str(raised.value))
        assert not (tmp_path / "out").exists()


def test_labels_with_a_byte_order_mark_read_as_written(tmp_path: Path) -> None:
    from edge_runtime.folder.reader import read_labels

    (tmp_path / "labels.txt").write_bytes("\ufeffbag\ntrouser\n".encode())
    assert read_labels(tmp_path / "labels.txt") == ["bag", "trouser"]


def test_a_custom_class_inside_a_layer_is_named_with_its_layer(tmp_path: Path) -> None:
    """A registered initializer is saved with module null: it was taken for Keras' own and loading then failed
    with a deserialization error naming no layer."""
    import keras

    @keras.saving.register_keras_serializable(package="notebook")
    class Halves(keras.initializers.Initializer):
        def __call__(self, shape: tuple[int, ...], dtype: object = None) -> object:
            return keras.ops.full(shape, 0.5, dtype=dtype)

    image = keras.Input((8, 8, 3))
    head = keras.layers.Dense(3, kernel_initializer=Halves(), name="head")(keras.layers.Flatten()(image))
    keras.Model(image, head).save(tmp_path / "mine.keras")
    with pytest.raises(pipeline.SourceError, match=r"layer 'head' uses a custom class 'notebook>Halves'"):
        pipeline.import_model(tmp_path / "mine.keras", data=tmp_path / "none", output=tmp_path / "out", progress=False)
