"""Conversion to every precision, the int8 model's integer tensors, and the accuracy-drift gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.backends import load_interpreter
from edge_runtime.choices import IoType, Precision
from edge_runtime.folder.reader import read_metadata, sha256_file
from pipeline import convert as pipeline_convert
from pipeline.conversion.stage import ConvertConfig, convert
from pipeline.errors import DataError, FolderError, UsageError
from pipeline.folder import PRECISIONS, FolderStore
from pipeline.measure.evaluate import DriftResult, EvaluateConfig, VariantDrift, compare, evaluate
from pipeline.surface.cli.app import main
from tests.conftest import requires_fashion_mnist

pytestmark = requires_fashion_mnist


def test_every_precision_is_written_and_runs(trained_folder: Path) -> None:
    sizes = {}
    for precision in PRECISIONS:
        path = trained_folder / f"model_{precision}.tflite"
        interpreter, _ = load_interpreter(path)
        details = interpreter.get_input_details()[0]
        interpreter.set_tensor(details["index"], np.full(details["shape"], 100, details["dtype"]))
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        assert out.shape == (1, 10)
        sizes[precision] = path.stat().st_size
    assert sizes["float16"] <= 0.55 * sizes["float32"]
    assert sizes["dynamic"] <= 0.30 * sizes["float32"] and sizes["int8"] <= 0.30 * sizes["float32"]


def test_int8_model_really_is_integer(trained_folder: Path) -> None:
    interpreter, _ = load_interpreter(trained_folder / "model_int8.tflite")
    model_input, model_output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert model_input["dtype"] == np.int8 and model_output["dtype"] == np.int8
    scale, zero_point = model_input["quantization"]
    # Raw pixels in: int8 input is (nearly) a plain shift of the pixel values.
    assert scale == pytest.approx(1.0, rel=0.02) and zero_point == -128
    float_tensors = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert not float_tensors, f"an int8 model must not compute in float: {float_tensors[:5]}"
    weights = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8 and len(t["shape"]) == 4]
    assert weights, "convolution kernels are int8"


def test_metadata_lists_every_variant_with_its_checksum(trained_folder: Path) -> None:
    metadata = read_metadata(trained_folder)
    assert list(metadata["variants"]) == list(PRECISIONS)
    for precision, record in metadata["variants"].items():
        path = trained_folder / record["file"]
        assert record["file"] == f"model_{precision}.tflite"
        assert record["bytes"] == path.stat().st_size and record["sha256"] == sha256_file(path)
        assert record["route"].split("+")[0] in ("saved-model", "keras-litert")
    assert (
        metadata["variants"]["int8"]["input"]["dtype"] == "int8"
        and metadata["variants"]["int8"]["calibration_samples"] == 200
    )
    assert metadata["variants"]["float16"]["input"]["dtype"] == "float32"
    assert {"tensorflow", "keras"} <= set(metadata["conversion"]["versions"])


def test_uint8_io_for_edge_tpu_era_tools(folder_copy: Path) -> None:
    result = convert(
        ConvertConfig(folder=folder_copy, precisions=(Precision.INT8,), io_type=IoType.UINT8, calibration_samples=(50,))
    )
    assert result.variants[0].input.dtype == "uint8" and result.variants[0].input.zero_point == 0
    assert read_metadata(folder_copy)["variants"]["float32"]["sha256"] == sha256_file(
        folder_copy / "model_float32.tflite"
    )


def test_calibration_asks_for_enough_but_not_too_many_images(folder_copy: Path) -> None:
    with pytest.raises(UsageError, match="cannot calibrate int8 ranges"):
        pipeline_convert(folder_copy, calibration_samples=3)
    with pytest.raises(DataError, match="more than the 3600 training images"):
        convert(ConvertConfig(folder=folder_copy, precisions=(Precision.INT8,), calibration_samples=(5000,)))


def test_int8_without_the_training_data_is_a_clear_error(folder_copy: Path, tmp_path: Path) -> None:
    metadata = json.loads((folder_copy / "metadata.json").read_text())
    metadata["dataset"]["path"] = str(tmp_path / "moved-away")
    (folder_copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DataError, match=r"int8 calibration needs the training data.*--data"):
        convert(ConvertConfig(folder=folder_copy, precisions=(Precision.INT8,)))
    convert(ConvertConfig(folder=folder_copy, precisions=(Precision.FLOAT16,)))  # other precisions need no data


def test_drift_numbers(trained_folder: Path) -> None:
    drift = json.loads((trained_folder / "drift.json").read_text())
    assert drift["test_images"] == 10000
    keras_accuracy = drift["keras"]["accuracy"]
    assert keras_accuracy == pytest.approx(read_metadata(trained_folder)["training"]["test_accuracy"], abs=1e-4)
    variants = drift["variants"]
    assert set(variants) == set(PRECISIONS)
    assert variants["float32"]["agreement"] >= 0.999 and abs(variants["float32"]["change_pp"]) <= 0.05
    assert variants["float16"]["agreement"] >= 0.999
    for precision, record in variants.items():
        assert record["accuracy"] == pytest.approx(keras_accuracy + record["change_pp"] / 100, abs=1e-9), precision
        changes = [c["change_pp"] for c in record["per_class"]]
        assert changes == sorted(changes), "per-class changes are listed worst first"
        assert np.asarray(record["confusion"]).sum() == 10000
        assert 0 <= record["mean_abs_diff"] <= record["max_abs_diff"] <= 1
        assert record["changed"] == round((1 - record["agreement"]) * 10000), precision
        assert 0 <= record["changed_ties"] <= record["changed"]
        assert (record["changed_keras_margin"] is None) == (record["changed"] == 0)
    assert 0 < drift["keras"]["median_margin"] <= 1


def test_changed_images_are_explained_by_ties_and_keras_margins() -> None:
    labels = ["a", "b", "c"]
    true = np.array([0, 1, 2, 0])
    keras_scores = np.array([[0.49, 0.51, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7], [0.9, 0.05, 0.05]], np.float32)
    # int8-like output: image 0 ties (the first index wins, against Keras), image 2 flips outright.
    int8_scores = np.array([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1], [0.0, 0.6, 0.4], [0.9, 0.05, 0.05]], np.float32)
    numbers = compare(labels, true, keras_scores, int8_scores)
    assert numbers["agreement"] == 0.5 and numbers["changed"] == 2 and numbers["changed_ties"] == 1
    assert numbers["changed_keras_margin"] == pytest.approx(np.median([0.02, 0.4]))
    result = DriftResult(Path("m"), 4, 0.75, None, 0.0, 1.0, keras_margin=0.6)
    result.variants.append(
        VariantDrift(
            "int8",
            "model_int8.tflite",
            "",
            0.5,
            -25.0,
            0.5,
            0.1,
            0.3,
            [],
            0.0,
            0.0,
            True,
            changed=2,
            changed_ties=1,
            changed_keras_margin=0.05,
        )
    )
    [note] = result.disagreements()
    assert note.startswith("int8: 2 images change class") and "1 of them exact ties" in note and "borderline" in note


def test_gate_fails_past_max_drop_and_passes_within(folder_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    worst = evaluate(EvaluateConfig(folder=folder_copy, max_drop=100))
    lost = max(-v.change_pp for v in worst.variants)
    assert main(["evaluate", str(folder_copy), "--max-drop", f"{max(lost, 0) + 0.5:.2f}"]) == 0
    if lost <= 0:
        pytest.skip("no variant of this model lost accuracy, so --max-drop 0 cannot fail")
    capsys.readouterr()
    assert main(["evaluate", str(folder_copy), "--max-drop", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "accuracy gate failed" in err[0] and "more than --max-drop 0 pp" in err[0]
    failing = [v.precision for v in worst.variants if v.change_pp < 0]
    assert all(p in err[0] for p in failing)


def test_evaluate_refuses_a_variant_that_does_not_match_its_checksum(folder_copy: Path) -> None:
    int8 = folder_copy / "model_int8.tflite"
    shutil.copy(folder_copy / "model_dynamic.tflite", int8)
    with pytest.raises(FolderError, match="does not match its sha256"):
        evaluate(EvaluateConfig(folder=folder_copy))


def test_a_failed_conversion_leaves_the_folder_as_it_was(folder_copy: Path) -> None:
    from tests.conftest import folder_digest

    before = folder_digest(folder_copy)
    with pytest.raises(DataError):
        convert(ConvertConfig(folder=folder_copy, calibration_samples=(100000,)))
    assert folder_digest(folder_copy) == before
    assert FolderStore(folder_copy).load().variants.keys() == set(PRECISIONS)
