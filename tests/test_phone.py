"""Phones: the `--target mediapipe` variants in the real MediaPipe Tasks ImageClassifier, and TFLite metadata
(labels, normalization) inside every file, read by edge_runtime and loaded by both interpreters."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.folder.reader import read_metadata
from edge_runtime.predictor import Predictor
from edge_runtime.tflite.requirements import at_least
from tests.conftest import ROOT, board, requires_fashion_mnist

PHONE_VARIANTS = ("mediapipe-float32", "mediapipe-float16", "mediapipe-int8")
IMAGES = 2000
# MediaPipe's own top-1 (index and the label name it reads from the file) for a .npy of RGB images.
CLASSIFY = r"""
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=sys.argv[1]), max_results=1)
top = []
with ImageClassifier.create_from_options(options) as classifier:
    for image in np.load(sys.argv[2]):
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        best = result.classifications[0].categories[0]
        top.append([best.index, best.category_name])
print(json.dumps(top))
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=900, check=False, cwd=ROOT
    )


@pytest.fixture(scope="module")
def phone_folder(trained_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained folder with its mediapipe variants, made and evaluated through the CLI as a user would."""
    folder = tmp_path_factory.mktemp("phone") / trained_folder.name
    shutil.copytree(trained_folder, folder)
    converted = _cli("convert", str(folder), "--target", "mediapipe", "--calibration-samples", "200")
    assert converted.returncode == 0, converted.stderr[-2000:]
    evaluated = _cli("evaluate", str(folder), "--max-drop", "100")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def rgb_test_images(fashion_arrays: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory):
    images, labels = fashion_arrays
    path = tmp_path_factory.mktemp("phone-images") / "rgb.npy"
    np.save(path, np.repeat(images[:IMAGES], 3, axis=-1))  # what a phone camera gives: RGB
    return path, images[:IMAGES], labels[:IMAGES]


@pytest.mark.slow
@requires_fashion_mnist
def test_phone_variants_are_recorded_evaluated_and_carry_metadata(phone_folder: Path) -> None:
    metadata = read_metadata(phone_folder)
    names = list(metadata["variants"])
    assert names == ["float32", "float16", "dynamic", "int8", "mixed", *PHONE_VARIANTS]  # the plain ones kept
    for name in PHONE_VARIANTS:
        record = metadata["variants"][name]
        assert record["file"] == f"model_{name}.tflite" and record["targets"] == ["tflite", "mediapipe"]
        assert record["image"]["channels"] == 3 and record["image"]["color"] == "rgb"
        assert record["input"]["dtype"] == ("uint8" if name.endswith("int8") else "float32")
        assert record["output"]["dtype"] == record["input"]["dtype"]
    int8 = metadata["variants"]["mediapipe-int8"]["input"]
    assert (int8["scale"], int8["zero_point"]) == (1.0, 0)  # MediaPipe feeds uint8 pixels as they are
    assert metadata["variants"]["int8"]["targets"] == ["tflite"]  # 1 channel, int8 I/O: not for MediaPipe
    drift = json.loads((phone_folder / "drift.json").read_text())["variants"]
    assert all(drift[name]["agreement"] > 0.98 for name in PHONE_VARIANTS), drift
    for name in names:
        embedded = Predictor(phone_folder / metadata["variants"][name]["file"]).embedded
        assert embedded is not None and embedded.labels == metadata["labels"] and embedded.mean == (0.0,)


@pytest.mark.slow
@requires_fashion_mnist
def test_mediapipe_classifies_real_images_with_every_phone_variant(
    phone_folder: Path, rgb_test_images: tuple, device_python: Callable[[str], Path]
) -> None:
    """Acceptance: label names from the embedded metadata, accuracy within 0.5 points of edge_runtime."""
    python, (rgb_path, gray, labels) = device_python("mediapipe"), rgb_test_images
    metadata = read_metadata(phone_folder)
    for name in PHONE_VARIANTS:
        path = phone_folder / metadata["variants"][name]["file"]
        done = subprocess.run(
            [str(python), "-c", CLASSIFY, str(path), str(rgb_path)], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        top = json.loads(done.stdout)
        assert all(label == metadata["labels"][index] for index, label in top)  # names come from the file
        phone = float(np.mean([index for index, _ in top] == labels))
        ours = float(np.mean(Predictor(path).scores(np.load(rgb_path)).argmax(axis=1) == labels))
        plain = Predictor(phone_folder / f"model_{name.split('-')[1]}.tflite").scores(gray).argmax(axis=1)
        plain_accuracy = float(np.mean(plain == labels))
        assert abs(phone - ours) <= 0.005 and abs(phone - plain_accuracy) <= 0.005, (name, phone, ours, plain_accuracy)
        assert phone > 0.6  # a really trained model, not chance


@pytest.mark.slow
@requires_fashion_mnist
def test_a_file_alone_prints_its_embedded_label_names(phone_folder: Path, tmp_path: Path) -> None:
    sample = ROOT / "models" / "fashion-mnist-cnn" / "samples" / "trouser.png"
    labels = read_metadata(phone_folder)["labels"]
    for name in ("mediapipe-int8", "int8", "float32"):
        alone = tmp_path / name / f"model_{name}.tflite"  # no metadata.json, no labels.txt beside it
        alone.parent.mkdir()
        shutil.copy(phone_folder / alone.name, alone)
        done = subprocess.run(
            [sys.executable, "-m", "edge_runtime", "predict", str(alone), str(sample), "--json", "--top-k", "3"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr  # no guesses to warn about
        top = json.loads(done.stdout)[0]["top_k"]
        assert [c["label"] for c in top] == [labels[c["index"]] for c in top] and top[0]["label"] == "Trouser"
    info = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime",
            "info",
            str(tmp_path / "mediapipe-int8" / "model_mediapipe-int8.tflite"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert re.search(
        r"inside +TFLite metadata: .* rgb input, mean \[0\.0\] std \[1\.0\]; 10 labels in labels\.txt", info.stdout
    ), info.stdout


@pytest.mark.slow
@requires_fashion_mnist
@pytest.mark.parametrize("device", ["litert-numpy2", "tflite-runtime-numpy1"])
def test_both_interpreters_load_every_file_written(
    phone_folder: Path, rgb_test_images: tuple, device: str, device_python: Callable[[str], Path], tmp_path: Path
) -> None:
    """Metadata and the appended labels zip change nothing for interpreters: each file gives this machine's top-1."""
    python, where = device_python(device), board(tmp_path, phone_folder)
    rgb_path, gray, _ = rgb_test_images
    np.save(where / "gray.npy", gray[:200])
    np.save(where / "rgb.npy", np.load(rgb_path)[:200])
    runtime = "2.14.0" if device.startswith("tflite-runtime") else "2.22.0"
    for name, record in read_metadata(phone_folder)["variants"].items():
        images = "rgb.npy" if record.get("image") else "gray.npy"
        done = subprocess.run(
            [str(python), "-m", "edge_runtime", "scores", f"model/{record['file']}", images],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if not at_least(runtime, record["min_runtime"]):  # dynamic on 2.14: refused for its op version, as before
            assert done.returncode == 1 and f"needs TFLite runtime {record['min_runtime']}" in done.stderr
            continue
        assert done.returncode == 0, (name, done.stderr)
        mine, theirs = Predictor(phone_folder / record["file"]).scores(np.load(where / images)), json.loads(done.stdout)
        assert_same_top1(mine, np.asarray(theirs["scores"]), exact="float" in name, name=name)


def assert_same_top1(mine: np.ndarray, theirs: np.ndarray, exact: bool, name: str) -> None:
    """The same top-1 for every image; with integer kernels (XNNPACK's here, tflite-runtime's own there), which
    round differently, a flip is allowed only on a near tie: two classes within 0.02 (5 steps of the int8 output's
    1/256) in both interpreters' scores (seen: 1 of 200 images, on a 77% model: a tie here, 3 steps there)."""
    flips = np.flatnonzero(mine.argmax(axis=1) != theirs.argmax(axis=1))
    assert not exact or flips.size == 0, (name, flips.tolist())
    assert flips.size <= 2, (name, flips.tolist())
    for i in flips:
        a, b = mine[i].argmax(), theirs[i].argmax()
        assert abs(mine[i][a] - mine[i][b]) <= 0.02 and abs(theirs[i][a] - theirs[i][b]) <= 0.02, (name, i)


@pytest.mark.slow
@requires_fashion_mnist
def test_uint8_input_reads_raw_pixels_even_when_calibration_images_are_dim(
    trained_folder: Path, fashion_arrays: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """Images that never reach 0 or 255 calibrate another input scale; the phone file still takes raw pixels."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from pipeline.conversion.converter import Converter, Recipe
    from pipeline.conversion.phone import phone_model, phone_pixels, raw_uint8_input

    spec = Predictor(trained_folder).spec
    model = phone_model(keras.models.load_model(trained_folder / "model.keras", compile=False), spec)
    images, _ = fashion_arrays
    dim = phone_pixels(images[:200].astype(np.float32) * 0.7 + 20, spec)  # 20..198
    recipe = Recipe.for_precision("int8", "uint8", "tf")
    converted = Converter(model, tmp_path).convert(recipe, calibration=dim).content
    rgb = np.repeat(images[1000:1500], 3, axis=-1)

    def top1(content: bytes, pixels: np.ndarray) -> np.ndarray:
        interpreter = Interpreter(model_content=content)
        given = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(given["index"], list(pixels.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], pixels.astype(np.uint8))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).argmax(axis=1)

    scale, zero_point = Interpreter(model_content=converted).get_input_details()[0]["quantization"]
    assert abs(scale - 1.0) > 0.1  # the converter's own choice: not raw pixels
    raw = raw_uint8_input(converted, "mediapipe-int8")
    assert Interpreter(model_content=raw).get_input_details()[0]["quantization"] == (1.0, 0)
    as_quantized = np.clip(np.round(rgb / scale + zero_point), 0, 255)
    np.testing.assert_array_equal(top1(raw, rgb), top1(converted, as_quantized))


def _readme_section_code(heading: str, language: str) -> str:
    """The first `language` block of docs/phones.md's section `heading`, as a user reads it."""
    section = (ROOT / "docs" / "phones.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_readme_phone_snippet_classifies_the_shipped_sample(device_python: Callable[[str], Path]) -> None:
    """README's "On a phone" Python, as written, on the folder users get: MediaPipe names the bag."""
    snippet = _readme_section_code("On a phone", "python")
    done = subprocess.run(
        [str(device_python("mediapipe")), "-c", snippet], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("Bag: "), done.stdout
    assert "ImageClassifier.createFromOptions(context, options)" in _readme_section_code("On a phone", "kotlin")


# MediaPipe's own generated reader of the metadata schema, on the file's TFLITE_METADATA buffer.
READ_METADATA = r"""
import json, sys, zipfile
from mediapipe.tasks.metadata import metadata_schema_py_generated as md, schema_py_generated as tfl
content = open(sys.argv[1], "rb").read()
model = tfl.Model.GetRootAsModel(content, 0)
entry = next(model.Metadata(i) for i in range(model.MetadataLength()) if model.Metadata(i).Name() == b"TFLITE_METADATA")
data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
assert md.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
meta = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAsModelMetadata(data, 0))
given, taken = meta.subgraphMetadata[0].inputTensorMetadata[0], meta.subgraphMetadata[0].outputTensorMetadata[0]
norm = given.processUnits[0].options
print(json.dumps({
    "name": meta.name.decode(), "description": meta.description.decode(), "version": meta.version.decode(),
    "author": meta.author.decode(), "min_parser": meta.minParserVersion.decode(),
    "color": given.content.contentProperties.colorSpace,
    "mean": [float(v) for v in norm.mean], "std": [float(v) for v in norm.std],
    "labels": [(f.name.decode(), f.type) for f in taken.associatedFiles],
    "score_range": [float(taken.stats.min[0]), float(taken.stats.max[0])],
    "packed": zipfile.ZipFile(sys.argv[1]).read("labels.txt").decode().split(),
}))
"""


@pytest.mark.slow
def test_mediapipe_reads_the_metadata_of_every_shipped_variant(device_python: Callable[[str], Path]) -> None:
    shipped = ROOT / "models" / "fashion-mnist-cnn"
    metadata = read_metadata(shipped)
    for name, record in metadata["variants"].items():
        done = subprocess.run(
            [str(device_python("mediapipe")), "-c", READ_METADATA, str(shipped / record["file"])],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (name, done.stderr[-1500:])
        read = json.loads(done.stdout)
        assert read["name"] == metadata["name"] and read["author"] == "edge-pipeline" and read["min_parser"] == "1.0.0"
        assert read["version"] == metadata["created_at"] and "fashion-mnist" in read["description"]
        assert read["color"] == (1 if name.startswith("mediapipe") else 2)  # ColorSpaceType RGB / GRAYSCALE
        assert (read["mean"], read["std"]) == ([0.0], [1.0])
        assert read["labels"] == [["labels.txt", 2]]  # TENSOR_AXIS_LABELS
        assert read["score_range"] == ([0.0, 255.0] if record["output"]["dtype"] == "uint8" else [0.0, 1.0])
        assert " ".join(read["packed"]) == " ".join(metadata["labels"])


@pytest.mark.slow
def test_phone_check_runs_every_phone_variant_of_a_folder_in_mediapipe(
    device_python: Callable[[str], Path], tmp_path: Path
) -> None:
    """`make phone-check`: MediaPipe's top-1 and label names against edge_runtime's, per phone variant."""
    from pipeline.devices.phone_check import PhoneError, check

    shipped = ROOT / "models" / "fashion-mnist-cnn"
    rows = check(shipped, device_python("mediapipe"))
    assert [row.variant for row in rows] == list(PHONE_VARIANTS)
    assert all(row.held for row in rows), rows
    assert rows[0].detail == "MediaPipe's top-1 and label names as edge_runtime's on all 6 samples"
    plain = tmp_path / "plain"
    shutil.copytree(shipped, plain)
    metadata = json.loads((plain / "metadata.json").read_text())
    for record in metadata["variants"].values():
        record["targets"] = ["tflite"]
    (plain / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(PhoneError, match="has no variant for phones; make them with `edge-pipeline convert"):
        check(plain, device_python("mediapipe"))


def test_phone_check_installs_what_the_tests_use_and_reuses_its_venv(tmp_path: Path) -> None:
    from pipeline.devices.phone_check import REQUIREMENTS, main, venv_python
    from tests.conftest import PHONES

    assert PHONES["mediapipe"] == list(REQUIREMENTS)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "venv" / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    assert venv_python(tmp_path, log=pytest.fail) == python  # made once: nothing is installed again
    assert main(["check", str(tmp_path)]) == 2 and main([]) == 2
