"""Every variant runs where it says: minimum runtimes, the folder default on old interpreters, --target-runtime,
and the emulated Raspberry Pi. Real interpreters only: tflite-runtime 2.14 (numpy 1.26) in its own venv, and
Debian bookworm arm64 under qemu-user with both interpreters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_runtime.backends import runtime_version
from edge_runtime.choices import Precision
from edge_runtime.folder.reader import read_metadata
from edge_runtime.tflite.requirements import at_least, read_requirements
from tests.conftest import CORAL, ROOT, board, requires_coral, requires_fashion_mnist

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"
LEGACY = "tflite-runtime-numpy1"
# What tflite-runtime 2.14 says about the shipped folder, word for word.
REFUSAL = (
    "edge-runtime: error: model/model_dynamic.tflite: needs TFLite runtime 2.17.0 or newer for op FULLY_CONNECTED "
    "version 12; installed: tflite-runtime 2.14.0 (runtime 2.14.0); use model_float16.tflite or "
    "model_float32.tflite or model_int8.tflite, `pip install ai-edge-litert`, or convert with "
    "`edge-pipeline convert --target-runtime 2.14`"
)
FALLBACK = (
    "edge-runtime: using model_int8.tflite: the folder's first choice model_dynamic.tflite needs TFLite runtime "
    "2.17.0, tflite-runtime 2.14.0 implements 2.14.0"
)


def test_requirements_are_read_from_the_file_and_recorded_in_metadata() -> None:
    metadata = read_metadata(SHIPPED)
    # int8 and mixed come from litert-quantizer (ai-edge-quantizer before): every operator at version 1 (a lower bound)
    expected = {"float32": "1.11.0", "float16": "1.15.0", "dynamic": "2.17.0", "int8": "1.11.0", "mixed": "1.11.0"}
    # the phone variants come from the TF converter (uint8 I/O), which writes real operator versions
    expected |= {"mediapipe-float32": "1.11.0", "mediapipe-float16": "1.15.0", "mediapipe-int8": "1.14.0"}
    for precision, record in metadata["variants"].items():
        needs = read_requirements((SHIPPED / record["file"]).read_bytes())
        assert needs.min_runtime == record["min_runtime"] == expected[precision]
        assert needs.ops == record["ops"] and needs.ops["FULLY_CONNECTED"] >= 1
    assert read_requirements((SHIPPED / "model_dynamic.tflite").read_bytes()).ops["FULLY_CONNECTED"] == 12


@requires_coral
def test_requirements_of_models_made_elsewhere() -> None:
    coral = read_requirements((CORAL / "mobilenet_v1_0.25_128_quant.tflite").read_bytes())
    assert coral.min_runtime == "1.5.0" and coral.ops["DEPTHWISE_CONV_2D"] == 1
    custom = read_requirements((CORAL / "invalid_custom_op.tflite").read_bytes())
    assert custom.min_runtime is None and custom.ops == {"fake-op-double": 1}


def test_runtime_versions() -> None:
    assert runtime_version("tflite-runtime", "2.14.0") == "2.14.0"
    assert runtime_version("litert", "2.3.0") == "2.22.0" and runtime_version("litert", "1.2.0") == "2.19.0"
    assert at_least("2.14.0", "1.15.0") and not at_least("2.14", "2.17.0") and at_least("2.17", "2.17.0")


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "edge_runtime", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_shipped_folder_on_tflite_runtime_2_14(tmp_path: Path, device_python: Callable[[str], Path]) -> None:
    """README's device command on the folder users get: the default falls back, the dynamic file is refused clearly."""
    python, device = device_python(LEGACY), board(tmp_path, SHIPPED)
    folder = _run(python, device, "predict", "model", "model/samples", "--json", "--top-k", "1")
    assert folder.returncode == 0, folder.stderr
    assert folder.stderr.strip().splitlines() == [FALLBACK]
    results = json.loads(folder.stdout)
    assert {r["variant"] for r in results} == {"int8"} and results[0]["backend"] == "tflite-runtime 2.14.0"
    assert {Path(r["image"]).stem: r["top_k"][0]["label"] for r in results}["bag"] == "Bag"
    dynamic = _run(python, device, "predict", "model/model_dynamic.tflite", "model/samples/bag.jpg")
    assert dynamic.returncode == 1 and dynamic.stderr.strip() == REFUSAL and "damaged" not in dynamic.stderr
    for precision in ("float32", "float16", "int8", "mixed"):
        ran = _run(python, device, "predict", f"model/model_{precision}.tflite", "model/samples/bag.jpg", "--json")
        assert ran.returncode == 0 and json.loads(ran.stdout)[0]["top_k"][0]["label"] == "Bag", ran.stderr
    bench = _run(python, device, "bench", "model", "--runs", "3", "--json")
    assert bench.returncode == 0 and json.loads(bench.stdout)["model"] == "model/model_int8.tflite"
    info = _run(python, device, "info", "model/model_int8.tflite")
    # litert-quantizer writes every operator at version 1 (see pipeline/conversion/quantizer.py)
    assert "runtime   needs 1.11.0 (CONV_2D v1, FULLY_CONNECTED v1," in info.stdout


@pytest.mark.slow
@requires_fashion_mnist
def test_target_runtime_2_14_makes_every_variant_run_there(
    folder_copy: Path, tmp_path: Path, device_python: Callable[[str], Path]
) -> None:
    from pipeline.conversion.stage import ConvertConfig, convert
    from pipeline.measure.evaluate import EvaluateConfig, evaluate

    result = convert(ConvertConfig(folder=folder_copy, calibration_samples=(100,), target_runtime="2.14"))
    every = ["float32", "float16", "dynamic", "int8", "mixed"]
    assert [v.precision for v in result.variants] == every and not result.skipped
    dynamic = next(v for v in result.variants if v.precision == "dynamic")
    assert dynamic.min_runtime == "2.4.0" and dynamic.ops["FULLY_CONNECTED"] <= 9 and dynamic.settings
    assert all(at_least("2.14", v.min_runtime) for v in result.variants)
    assert read_metadata(folder_copy)["conversion"]["target_runtime"] == "2.14"
    drift = evaluate(EvaluateConfig(folder=folder_copy, max_drop=100.0))
    assert {v.precision for v in drift.variants} == set(every)
    assert all(v.agreement > 0.95 for v in drift.variants)
    python, device = device_python(LEGACY), board(tmp_path, folder_copy)
    for precision in every:
        ran = _run(python, device, "bench", f"model/model_{precision}.tflite", "--runs", "2", "--json")
        assert ran.returncode == 0, ran.stderr
    shutil.copy(SHIPPED / "samples" / "bag.jpg", device / "bag.jpg")
    folder = _run(python, device, "predict", "model", "bag.jpg", "--json")
    assert folder.returncode == 0 and "first choice" in folder.stderr, folder.stderr
    assert json.loads(folder.stdout)[0]["variant"] == (read_metadata(folder_copy).get("recommended") or "int8")


def _emulator() -> object:
    from pipeline.devices.emulator import EmulatorError, build, missing_tools

    if missing_tools() and not os.environ.get("CI"):
        pytest.skip(
            f"the emulated Pi needs {', '.join(missing_tools())} (apt-get install debootstrap qemu-user-static)"
        )
    try:
        return build(log=lambda line: None)
    except EmulatorError as error:
        pytest.fail(f"emulated Pi could not be built: {error}")


@pytest.mark.slow
def test_emulated_pi_runs_the_shipped_folder_with_both_interpreters() -> None:
    from pipeline.devices.emulator import check

    rows = check(SHIPPED, _emulator())
    assert all(row.held for row in rows), [row for row in rows if not row.held]
    facts = {row.interpreter: row.detail for row in rows if row.target == "platform"}
    assert all(detail.startswith("aarch64 Python 3.11") for detail in facts.values()) and len(facts) == 2
    chosen = {row.interpreter: row.detail for row in rows if row.target == "folder (predict)"}
    assert chosen == {
        "litert": "model_dynamic.tflite on litert 2.3.0",
        "tflite-runtime": "model_int8.tflite on tflite-runtime 2.14.0",
    }


@pytest.mark.slow
@requires_fashion_mnist
def test_emulated_pi_runs_a_fresh_conversion(trained_folder: Path, tmp_path: Path) -> None:
    from pipeline.devices.emulator import check

    folder = tmp_path / "fresh"
    shutil.copytree(trained_folder, folder)
    rows = check(folder, _emulator())
    assert all(row.held for row in rows), [row for row in rows if not row.held]
    ran = {(row.interpreter, row.target) for row in rows if "as on this machine" in row.detail}
    assert ("tflite-runtime", "model_int8.tflite") in ran and ("litert", "model_dynamic.tflite") in ran


@pytest.mark.slow
@requires_fashion_mnist
def test_a_precision_that_cannot_meet_the_target_is_skipped_and_removed(folder_copy: Path) -> None:
    from pipeline.conversion.stage import ConvertConfig, convert

    before = read_metadata(folder_copy)["variants"]["float16"]["min_runtime"]
    result = convert(
        ConvertConfig(folder=folder_copy, precisions=(Precision.FLOAT32, Precision.FLOAT16), target_runtime="1.12")
    )
    assert before == "1.15.0" and [v.precision for v in result.variants] == ["float32"]
    assert result.skipped == [
        "float16: skipped, it needs TFLite runtime 1.15.0 (ops CONV_2D v1, "
        "DEQUANTIZE v3, FULLY_CONNECTED v1, MAX_POOL_2D v1, PACK v1, RESHAPE v1, SHAPE v1, SOFTMAX v1, "
        "STRIDED_SLICE v1), newer than --target-runtime 1.12"
    ]
    metadata = read_metadata(folder_copy)
    assert "float16" not in metadata["variants"] and not (folder_copy / "model_float16.tflite").exists()
    assert metadata["conversion"]["skipped"] == result.skipped
