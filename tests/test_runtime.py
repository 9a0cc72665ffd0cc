"""edge_runtime against TensorFlow's own interpreter, on our models and on a Coral ImageNet model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_runtime import Predictor
from edge_runtime.cli import main
from edge_runtime.errors import BackendError, LabelsError, ModelError, UsageError
from edge_runtime.folder.reader import InputSpec
from edge_runtime.images import load_pixels
from pipeline.folder import PRECISIONS
from tests.conftest import CORAL, ROOT, requires_coral, requires_fashion_mnist, without_metadata

CAT_CLASSES = {"tiger cat", "Egyptian cat", "tabby, tabby cat"}


def _tf_interpreter_scores(
    model: Path, pixels: np.ndarray, mean: float = 0.0, std: float = 1.0, raw: bool = False
) -> np.ndarray:
    """Scores from TensorFlow's own tf.lite.Interpreter, one image at a time, quantizing by hand."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    model_input, model_output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in pixels:
        scale, zero_point = model_input["quantization"]
        if raw:
            tensor = image.astype(model_input["dtype"])
        elif scale:
            info = np.iinfo(model_input["dtype"])
            tensor = np.clip(
                np.round((image.astype(np.float32) - mean) / std / scale) + zero_point, info.min, info.max
            ).astype(model_input["dtype"])
        else:
            tensor = ((image.astype(np.float32) - mean) / std).astype(model_input["dtype"])
        interpreter.set_tensor(model_input["index"], tensor[None])
        interpreter.invoke()
        out = interpreter.get_tensor(model_output["index"])[0].astype(np.float32)
        out_scale, out_zero = model_output["quantization"]
        rows.append((out - out_zero) * out_scale if out_scale else out)
    return np.stack(rows)


# --- equality with TensorFlow's interpreter ---------------------------------------------------


@requires_fashion_mnist
@pytest.mark.parametrize("precision", PRECISIONS)
def test_predictions_equal_tensorflow_interpreter(trained_folder: Path, fashion_arrays: tuple, precision: str) -> None:
    images, _ = fashion_arrays
    model = trained_folder / f"model_{precision}.tflite"
    predictor = Predictor(model)
    pixels = np.stack([predictor.preprocess(Image.fromarray(image[:, :, 0])) for image in images[:200]])
    ours = predictor.scores(pixels)
    theirs = _tf_interpreter_scores(model, pixels)
    assert np.array_equal(ours.argmax(axis=1), theirs.argmax(axis=1))
    tolerance = predictor.output_quantization.scale if predictor.output_quantization.quantized else 1e-5
    assert np.abs(ours - theirs).max() <= tolerance + 1e-6


@requires_coral
def test_coral_imagenet_model_finds_the_cat_like_tensorflow() -> None:
    model, labels = CORAL / "mobilenet_v1_0.25_128_quant.tflite", CORAL / "imagenet_labels.txt"
    predictor = Predictor(model, labels=labels)
    top = predictor.predict(CORAL / "cat.bmp", top_k=3)
    assert {c.label for c in top} == CAT_CLASSES, "the three cat classes rank first"
    assert predictor.labels[0] == "background" and predictor.num_classes == 1001
    pixels = predictor.preprocess(CORAL / "cat.bmp")[None]
    theirs = _tf_interpreter_scores(model, pixels, raw=True)
    assert np.abs(predictor.scores(pixels) - theirs).max() <= predictor.output_quantization.scale + 1e-6
    assert all(0.0 <= c.score <= 1.0 for c in top)


@requires_coral
def test_a_model_from_elsewhere_with_tflite_metadata_needs_no_labels_or_normalisation() -> None:
    """Coral's MobileNet carries TFLite metadata (labels inside, mean/std 127.5) as Task Library models do."""
    predictor = Predictor(CORAL / "mobilenet_v1_0.25_128_quant.tflite")
    assert predictor.embedded is not None and predictor.embedded.label_file == "imagenet_labels.txt"
    assert predictor.assumptions == [] and predictor.spec.mean == 127.5 and predictor.spec.color == "rgb"
    labelled = Predictor(CORAL / "mobilenet_v1_0.25_128_quant.tflite", labels=CORAL / "imagenet_labels.txt")
    assert predictor.labels == labelled.labels and predictor.labels[0] == "background"  # 1001 outputs, 1001 labels
    pixels = predictor.preprocess(CORAL / "cat.bmp")[None]
    assert {c.label for c in predictor.predict(CORAL / "cat.bmp", top_k=3)} == CAT_CLASSES
    np.testing.assert_array_equal(predictor.scores(pixels), labelled.scores(pixels))


@requires_coral
def test_coral_model_with_explicit_label_image_normalisation_agrees() -> None:
    model, labels = CORAL / "mobilenet_v1_0.25_128_quant.tflite", CORAL / "imagenet_labels.txt"
    normalised = Predictor(model, labels=labels, input_mean=127.5, input_std=127.5).predict(CORAL / "cat.bmp", top_k=3)
    assert {c.label for c in normalised} == CAT_CLASSES


# --- models without metadata, labels ----------------------------------------------------------


@requires_fashion_mnist
def test_model_without_metadata_reads_its_input_from_the_model(
    trained_folder: Path, tmp_path: Path, fashion_arrays: tuple
) -> None:
    alone = without_metadata(trained_folder / "model_float32.tflite", tmp_path / "model.tflite")
    images, _ = fashion_arrays
    with pytest.raises(UsageError, match=r"a float input, and no metadata.json or TFLite metadata says how"):
        Predictor(alone)  # issue #31: never guessed
    bare = Predictor(alone, input_mean=0, input_std=1)
    assert bare.embedded is None and not bare.assumptions
    assert (bare.spec.height, bare.spec.width, bare.spec.channels) == (28, 28, 1)
    assert bare.spec.raw and bare.labels == [str(i) for i in range(10)]
    raw_pixels = Predictor(alone, input_mean=0, input_std=1, labels=trained_folder / "labels.txt")
    folder = Predictor(trained_folder / "model_float32.tflite")
    for image in images[:20]:
        assert raw_pixels.predict(image)[0] == folder.predict(image)[0]


@requires_fashion_mnist
def test_labels_one_line_longer_drop_a_leading_background(trained_folder: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("background\n" + (trained_folder / "labels.txt").read_text())
    predictor = Predictor(trained_folder / "model_int8.tflite", labels=labels)
    assert predictor.labels[0] == "T-shirt/top" and len(predictor.labels) == 10


@requires_fashion_mnist
def test_labels_that_do_not_fit_are_refused(trained_folder: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    with pytest.raises(LabelsError, match="has 3 labels but the model has 10 outputs"):
        Predictor(trained_folder / "model_int8.tflite", labels=labels)


# --- images -----------------------------------------------------------------------------------

SPEC_RGB = InputSpec(16, 16, 3)
SPEC_GRAY = InputSpec(16, 16, 1, "grayscale")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "I", "F", "1", "YCbCr"])
def test_every_pil_mode_becomes_model_pixels(mode: str) -> None:
    image = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode)
    for spec in (SPEC_RGB, SPEC_GRAY):
        pixels = load_pixels(image, spec)
        assert pixels.shape == (16, 16, spec.channels) and pixels.dtype == np.uint8


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(path)
    assert abs(int(load_pixels(path, SPEC_GRAY)[0, 0, 0]) - 128) <= 1


def test_transparent_pixels_are_white_like_a_viewer_shows_them() -> None:
    image = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    assert load_pixels(image, SPEC_RGB).min() == 255


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "phone.jpg"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    pixels = load_pixels(path, InputSpec(40, 20, 3))
    assert pixels.shape == (40, 20, 3)
    assert pixels[:20].mean() > 200 and pixels[20:].mean() < 50, "shown upright: white half on top"


def test_inversion_and_arrays(tmp_path: Path) -> None:
    array = np.zeros((16, 16), np.uint8)
    assert load_pixels(array, InputSpec(16, 16, 1, "grayscale", invert=True)).min() == 255
    assert load_pixels(array.astype(np.float32)[..., None], SPEC_GRAY).max() == 0
    assert load_pixels(np.zeros((16, 16, 4), np.uint8), SPEC_RGB).shape == (16, 16, 3)


@requires_fashion_mnist
def test_predict_accepts_path_pil_image_and_array_alike(
    trained_folder: Path, fashion_arrays: tuple, tmp_path: Path
) -> None:
    images, _ = fashion_arrays
    predictor = Predictor(trained_folder)
    assert predictor.model_path.name == "model_int8.tflite", "a folder means its integer model"
    path = tmp_path / "boot.png"
    Image.fromarray(images[0][:, :, 0]).save(path)
    from_path = predictor.predict(path, top_k=3)
    assert predictor.predict(Image.open(path), top_k=3) == from_path == predictor.predict(images[0], top_k=3)
    batch = predictor.predict_batch([path, images[1], images[2]], top_k=1)
    assert batch[0][0] == from_path[0] and len(batch) == 3
    assert [c.score for c in from_path] == sorted((c.score for c in from_path), reverse=True)


# --- CLI --------------------------------------------------------------------------------------


@requires_fashion_mnist
def test_cli_predict_table_and_json(
    trained_folder: Path, fashion_arrays: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _ = fashion_arrays
    photos = tmp_path / "photos"
    (photos / "nested").mkdir(parents=True)
    for index in range(3):
        Image.fromarray(images[index][:, :, 0]).resize((56, 56)).save(
            photos / ("nested" if index else "") / f"{index}.png"
        )
    (photos / "README.txt").write_text("ignored inside folders")
    assert main(["predict", str(trained_folder), str(photos), "--top-k", "2"]) == 0
    table = capsys.readouterr().out
    assert "label" in table and "score" in table and str(photos / "0.png") in table
    assert main(["predict", str(trained_folder), str(photos), "--top-k", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3 and all(len(r["top_k"]) == 2 for r in results)
    first = results[0]["top_k"][0]
    assert set(first) == {"label", "index", "score"} and isinstance(first["index"], int) and 0 <= first["score"] <= 1


@requires_fashion_mnist
def test_cli_bench_reports_latency_size_and_memory(trained_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "bench",
                str(trained_folder / "model_int8.tflite"),
                "--runs",
                "20",
                "--warmup",
                "2",
                "--threads",
                "1",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"} <= set(result["latency"])
    assert (
        result["latency"]["min_ms"]
        <= result["latency"]["p50_ms"]
        <= result["latency"]["p99_ms"]
        <= result["latency"]["max_ms"]
    )
    assert result["bytes"] == (trained_folder / "model_int8.tflite").stat().st_size and result["peak_memory_mb"] > 0


@requires_fashion_mnist
def test_cli_info_shows_tensors_quantization_ops_and_metadata(
    trained_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", str(trained_folder / "model_int8.tflite")]) == 0
    out = capsys.readouterr().out
    assert "int8" in out and "zero point -128" in out and "CONV_2D x3" in out and "metadata" in out
    assert main(["info", str(trained_folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ops"] > 5 and info["metadata"]["name"] == trained_folder.name


@requires_fashion_mnist
def test_forced_backends(trained_folder: Path) -> None:
    tf_backend = Predictor(trained_folder / "model_float32.tflite", backend="tensorflow")
    assert tf_backend.backend.name == "tensorflow"
    litert = Predictor(trained_folder / "model_float32.tflite", backend="litert")
    pixels = np.full((2, 28, 28, 1), 90, np.uint8)
    assert np.allclose(tf_backend.scores(pixels), litert.scores(pixels), atol=1e-5)
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="pip install ai-edge-litert"):
            Predictor(trained_folder / "model_float32.tflite", backend="tflite-runtime")


@requires_fashion_mnist
def test_tensorflow_is_never_imported_when_a_small_runtime_is_installed(trained_folder: Path, tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    Image.new("L", (28, 28), 128).save(image)
    script = (
        "import sys; from edge_runtime.cli import main; "
        f"code = main(['predict', {str(trained_folder)!r}, {str(image)!r}, '--json']); "
        "assert code == 0; assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; "
        "assert 'keras' not in sys.modules and 'pipeline' not in sys.modules; print('clean')"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("clean")


def test_edge_runtime_source_never_imports_tensorflow_keras_or_pipeline() -> None:
    for path in (ROOT / "edge_runtime").glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                assert not stripped.split()[1].startswith(("tensorflow", "keras", "pipeline")), (
                    f"{path.name}: {stripped}"
                )


def test_not_a_model_and_unknown_ops_are_model_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.tflite"
    text.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a TFLite model"):
        Predictor(text)
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    image_as_model = tmp_path / "picture.tflite"
    image_as_model.write_bytes(buffer.getvalue())
    with pytest.raises(ModelError, match="not a TFLite model"):
        Predictor(image_as_model)


@requires_coral
def test_unknown_custom_op_is_one_line() -> None:
    with pytest.raises(ModelError) as caught:
        Predictor(CORAL / "invalid_custom_op.tflite")
    assert "cannot run this model" in str(caught.value) and "fake-op-double" in str(caught.value)
    assert "\n" not in str(caught.value)
