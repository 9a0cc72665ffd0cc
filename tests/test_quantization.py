"""Accuracy-aware quantization: litert-quantizer calibration, per-layer error, the mixed precision, the sweep.

Real conversions of a really trained cnn; the numbers asserted are the ones the folder records.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.backends import load_interpreter
from edge_runtime.choices import Calibration, Precision
from edge_runtime.folder.reader import load_metadata
from pipeline.conversion import quantizer
from pipeline.conversion.layer_error import ROUNDING_FLOOR
from pipeline.conversion.mixed import MixedTarget, candidates, lower_bound
from pipeline.conversion.stage import ConvertConfig, convert
from pipeline.errors import UsageError
from pipeline.folder import CALIBRATION_PNG, DRIFT_JSON, METADATA_FILE, QUANTIZATION_JSON, QUANTIZATION_PNG, REPORT_MD
from pipeline.measure.evaluate import EvaluateConfig, evaluate
from pipeline.reporting.build import ReportConfig, write_report


def test_wilson_lower_bound_is_below_the_estimate_and_tightens_with_more_images() -> None:
    assert lower_bound(2000, 2000) == pytest.approx(99.865, abs=0.01)  # all agree: still not 100% sure
    assert lower_bound(1995, 2000) < lower_bound(19950, 20000) < 99.75  # same share, more images: tighter
    assert lower_bound(0, 0) == 0.0


def test_candidates_are_runs_from_both_ends_and_the_worst_single_ops(trained_folder: Path) -> None:
    ops = quantizer.float_ops((trained_folder / "model_float32.tflite").read_bytes())
    assert [op.index for op in ops] == list(range(len(ops))) and ops[0].kind == "CONV_2D"
    assert all(op.scope.endswith(";") for op in ops) and ops[0].weight_bytes > 0
    found = candidates(ops, worst_first=[5, 2, 9, 0])
    hows = [c.how for c in found]
    assert hows.count("input-run") == hows.count("output-run") == len(ops) - 1 and hows.count("single-op") == 3
    assert found[0].ops == () and found[1].ops == (ops[0],) and found[-1].ops == (ops[9],)


def test_int8_by_litert_quantizer_is_integer_end_to_end(trained_folder: Path) -> None:
    """The cnn's Flatten reads SHAPE, which the quantizer would feed a dequantized float copy."""
    interpreter, _ = load_interpreter(trained_folder / "model_int8.tflite")
    floats = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert not floats
    record = load_metadata(trained_folder).variants["int8"]
    assert record.calibration == Calibration.MIN_MAX and record.route == "saved-model+litert-quantizer"
    assert "DEQUANTIZE" not in (record.ops or {})


def test_per_layer_error_is_recorded_and_reported(trained_folder: Path) -> None:
    data = json.loads((trained_folder / QUANTIZATION_JSON).read_text())
    layers = data["layers"]
    assert data["calibration"] == "min-max" and data["calibration_samples"] == 200
    convs = [layer for layer in layers if layer["op"] == "CONV_2D"]
    assert len(convs) == 3 and all(10 < layer["snr_db"] < 80 for layer in convs)
    # Rounding alone gives 0.29 steps; a calibrated 8-bit activation stays within a few steps.
    assert all(ROUNDING_FLOOR * 0.5 < layer["rmse_scale"] < 5 for layer in convs)


def test_mixed_is_chosen_on_validation_images_and_reported_on_test(trained_folder: Path) -> None:
    metadata = load_metadata(trained_folder)
    mixed, float32 = metadata.variants["mixed"], metadata.variants["float32"]
    record = mixed.mixed or {}
    validation = json.loads((trained_folder / METADATA_FILE).read_text())["dataset"]["sizes"]["validation"]
    assert record["selection_images"] == min(2000, validation)
    assert record["chosen_by"] in ("none", "input-run", "output-run", "single-op")
    # The search weighs the converted models; the files add about 1.2 KB of TFLite metadata each.
    metadata_bytes = 1300
    assert mixed.bytes <= 0.5 * float32.bytes and record["size_ratio"] == pytest.approx(
        mixed.bytes / float32.bytes, abs=metadata_bytes / float32.bytes + 1e-3
    )
    drift = json.loads((trained_folder / DRIFT_JSON).read_text())["variants"]["mixed"]
    assert record["test_agreement"] == pytest.approx(100 * drift["agreement"], abs=0.01)  # the same number, twice
    if record["target_met"]:
        assert record["selection_lower_bound"] >= record["min_agreement"]


def test_an_impossible_target_gives_the_best_candidate_marked_not_met(folder_copy: Path) -> None:
    target = MixedTarget(min_agreement=100.0, max_float_share=0.3)
    convert(ConvertConfig(folder=folder_copy, precisions=(Precision.MIXED,), calibration_samples=(50,), target=target))
    metadata = load_metadata(folder_copy)
    record = metadata.variants["mixed"].mixed or {}
    assert not record["target_met"] and record["candidates_tried"] >= 2
    assert metadata.variants["mixed"].bytes <= 0.3 * metadata.variants["float32"].bytes
    tried = json.loads((folder_copy / QUANTIZATION_JSON).read_text())["mixed_candidates"]
    assert max(t["selection_agreement"] for t in tried) == record["selection_agreement"]


def test_calibration_sweep_shows_each_count_over_three_draws(folder_copy: Path) -> None:
    result = convert(ConvertConfig(folder=folder_copy, precisions=(Precision.INT8,), calibration_samples=(20, 60)))
    assert result.quantization is not None
    sweep = result.quantization.sweep
    assert [(row["samples"], row["seed"]) for row in sweep] == [(n, 42 + s) for n in (20, 60) for s in range(3)]
    assert all(90.0 < row["agreement"] <= 100.0 for row in sweep)
    assert load_metadata(folder_copy).variants["int8"].calibration_samples == 60  # the variant uses the largest
    evaluate(EvaluateConfig(folder=folder_copy, max_drop=100.0))
    write_report(ReportConfig(folder=folder_copy, samples=0))
    report = (folder_copy / REPORT_MD).read_text()
    assert "### Calibration sweep" in report and "| 20 | 3 |" in report and "| 60 | 3 |" in report
    assert "### How the mixed variant was chosen" in report and "### int8 layers furthest from float" in report
    for picture in (CALIBRATION_PNG, QUANTIZATION_PNG):
        assert (folder_copy / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tf_converter_calibration_is_still_there(folder_copy: Path) -> None:
    convert(
        ConvertConfig(
            folder=folder_copy,
            precisions=(Precision.INT8, Precision.MIXED),
            calibration=Calibration.TF,
            calibration_samples=(50,),
        )
    )
    metadata = load_metadata(folder_copy)
    record = metadata.variants["int8"]
    assert record.calibration == "tf" and record.route == "saved-model"
    assert metadata.variants["mixed"].calibration == "min-max"  # the same estimator, by litert-quantizer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration": "histogram"}, "calibration 'histogram' is not one of min-max, moving-average, tf"),
        ({"min_agreement": 0}, "min_agreement must be above 0 and at most 100, got 0"),
        ({"max_float_share": 1.5}, "max_float_share must be above 0 and at most 1, got 1.5"),
        ({"calibration_samples": (100, 5)}, "calibration_samples must be between 10 and 100000, got 5"),
    ],
)
def test_bad_quantization_settings_are_one_line_usage_errors(kwargs: dict, message: str) -> None:
    import pipeline

    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        pipeline.convert("unused", **kwargs)
