"""Bad input everywhere, interrupted runs, and fuzzing: one clear line, the right exit code, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge_runtime.backends import load_interpreter
from edge_runtime.cli import main as runtime_main
from edge_runtime.errors import EdgeRuntimeError, ImageError, ModelError
from edge_runtime.images import load_pixels, prepare_pixels
from edge_runtime.model_folder import InputSpec
from pipeline.cli.app import main as pipeline_main
from tests.conftest import CORAL, ROOT, folder_digest, requires_fashion_mnist, write_image_folder

pytestmark = requires_fashion_mnist


# --- building bad files -------------------------------------------------------------------------


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A real PNG whose header claims more pixels than it is safe to decode."""
    raw = b"\x00" + b"\x00" * 8

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def truncated_png(path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    image.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@dataclass
class Workspace:
    root: Path
    folder: Path  # a copy of the trained model folder
    images: Path  # a good image folder
    fashion: tuple


@pytest.fixture
def workspace(folder_copy: Path, tmp_path: Path, fashion_arrays: tuple) -> Workspace:
    images, labels = fashion_arrays
    photos = write_image_folder(
        tmp_path / "photos", images, labels, {1: "trouser", 7: "sneaker", 8: "bag"}, per_class=12
    )
    return Workspace(tmp_path, folder_copy, photos, fashion_arrays)


def _edit_metadata(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "metadata.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _classes(root: Path, layout: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, count in layout.items():
        (root / name).mkdir()
        for index in range(count):
            Image.new("L", (12, 12), color=(index * 37) % 256).save(root / name / f"{index}.png")
    return root


@pytest.fixture(scope="session")
def two_output_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real TFLite model that is not a classifier: one image in, two outputs."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(4)(flat), keras.layers.Dense(2)(flat)])
    folder = tmp_path_factory.mktemp("two-outputs")
    model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
    path = folder / "two_outputs.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved")).convert())
    return path


# --- the table ----------------------------------------------------------------------------------

Setup = Callable[[Workspace], list[str]]
PIPELINE_CASES: list[tuple[str, Setup, int, str]] = [
    # datasets
    ("missing data path", lambda w: ["train", "--data", str(w.root / "nope")], 1, "no such folder"),
    (
        "no class sub-folders",
        lambda w: ["train", "--data", str(_classes(w.root / "flat", {}))],
        1,
        "has no class sub-folders",
    ),
    (
        "class folder without images",
        lambda w: ["train", "--data", str(_classes(w.root / "d", {"a": 4, "b": 0}))],
        1,
        "class folder has no images",
    ),
    ("a single class", lambda w: ["train", "--data", str(_classes(w.root / "d", {"only": 6}))], 1, "has one class"),
    (
        "too few images for the split",
        lambda w: ["train", "--data", str(_classes(w.root / "d", {"a": 6, "b": 2}))],
        1,
        "needs at least 3",
    ),
    ("unknown dataset", lambda w: ["train", "--dataset", "imagenet"], 2, "unknown dataset 'imagenet'"),
    ("limit too small", lambda w: ["train", "--limit", "5"], 2, "--limit must be at least 20"),
    # options
    ("unknown model", lambda w: ["train", "--model", "resnet"], 2, "unknown model 'resnet'"),
    (
        "unsupported alpha",
        lambda w: ["train", "--model", "mobilenet_v2", "--alpha", "0.6", "--weights", "none"],
        2,
        "not a MobileNetV2 width",
    ),
    (
        "input size too small",
        lambda w: ["train", "--model", "mobilenet_v2", "--input-size", "16", "--weights", "none"],
        2,
        "needs at least 32",
    ),
    ("zero epochs", lambda w: ["train", "--epochs", "0"], 2, "--epochs must be at least 1"),
    ("negative batch", lambda w: ["train", "--batch-size", "-1"], 2, "--batch-size must be at least 1"),
    (
        "validation split out of range",
        lambda w: ["train", "--validation-split", "0.9"],
        2,
        "--validation-split must be between",
    ),
    ("learning rate out of range", lambda w: ["train", "--learning-rate", "5"], 2, "--learning-rate must be between"),
    ("not a number", lambda w: ["train", "--epochs", "many"], 2, "Invalid value for '--epochs'"),
    ("unknown option", lambda w: ["train", "--epoch", "3"], 2, "No such option"),
    ("unknown precision", lambda w: ["convert", str(w.folder), "--precision", "int4"], 2, "unknown precision 'int4'"),
    ("unknown io type", lambda w: ["convert", str(w.folder), "--io-type", "int16"], 2, "--io-type 'int16'"),
    (
        "too few calibration images",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "3"],
        2,
        "too few to calibrate",
    ),
    (
        "a device target that is an ssh option",
        lambda w: ["run", "--on", "-oProxyCommand=touch pwned"],
        2,
        "'-oProxyCommand=touch pwned' is not [USER@]HOST[:DIR]",
    ),
    ("deploy without a target", lambda w: ["deploy", str(w.root / "ghost")], 2, "deploy needs --to"),
    (
        "report for an unknown device",
        lambda w: ["report", str(w.folder), "--device", "ghost"],
        2,
        "--device 'ghost': no such device in benchmark.json (known: none yet)",
    ),
    (
        "calibration counts not numbers",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "100,x"],
        2,
        "like 100,300,1000",
    ),
    (
        "unknown calibration",
        lambda w: ["convert", str(w.folder), "--calibration", "histogram"],
        2,
        "--calibration 'histogram' is not one of min-max, moving-average, tf",
    ),
    (
        "agreement target out of range",
        lambda w: ["convert", str(w.folder), "--min-agreement", "101"],
        2,
        "--min-agreement 101 must be a percentage",
    ),
    (
        "float share out of range",
        lambda w: ["run", "--max-float-share", "0"],
        2,
        "--max-float-share 0 must be above 0",
    ),
    (
        "more calibration images than data",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "90000"],
        1,
        "more than the 3600 training images",
    ),
    ("zero threads", lambda w: ["benchmark", str(w.folder), "--threads", "0"], 2, "at least 1"),
    ("threads not numbers", lambda w: ["benchmark", str(w.folder), "--threads", "a,b"], 2, "like 1,2,4"),
    ("zero runs", lambda w: ["benchmark", str(w.folder), "--runs", "0"], 2, "--runs must be at least 1"),
    (
        "negative max drop",
        lambda w: ["evaluate", str(w.folder), "--max-drop", "-1"],
        2,
        "--max-drop must be between 0 and 100",
    ),
    (
        "max drop over 100",
        lambda w: ["report", str(w.folder), "--max-drop", "101"],
        2,
        "--max-drop must be between 0 and 100",
    ),
    (
        "zero evaluation threads",
        lambda w: ["evaluate", str(w.folder), "--threads", "0"],
        2,
        "--threads must be at least 1",
    ),
    # model folders
    ("no such model folder", lambda w: ["evaluate", str(w.root / "ghost")], 1, "no such model folder"),
    (
        "missing metadata",
        lambda w: [(w.folder / "metadata.json").unlink(), "evaluate", str(w.folder)][1:],
        1,
        "no metadata.json",
    ),
    (
        "corrupt metadata",
        lambda w: [(w.folder / "metadata.json").write_text("{broken"), "evaluate", str(w.folder)][1:],
        1,
        "not valid JSON",
    ),
    (
        "newer schema",
        lambda w: [_edit_metadata(w.folder, lambda d: d.update(schema=99)), "evaluate", str(w.folder)][1:],
        1,
        "written with schema 99, newer than this version",
    ),
    (
        "truncated tflite",
        lambda w: [
            (w.folder / "model_int8.tflite").write_bytes((w.folder / "model_int8.tflite").read_bytes()[:500]),
            "benchmark",
            str(w.folder),
        ][1:],
        1,
        "does not match its sha256",
    ),
    (
        "text file named .tflite",
        lambda w: [(w.folder / "model_float16.tflite").write_text("hello"), "evaluate", str(w.folder)][1:],
        1,
        "does not match its sha256",
    ),
    (
        "damaged keras model",
        lambda w: [(w.folder / "model.keras").write_bytes(b"PK\x03\x04junk"), "convert", str(w.folder)][1:],
        1,
        "model.keras: does not match its sha256",
    ),
    (
        "another model's folder",
        lambda w: ["train", "--model", "mlp", "--output", str(w.folder)],
        1,
        "holds a different model",
    ),
]


@pytest.mark.parametrize(("case", "setup", "code", "message"), PIPELINE_CASES, ids=[c[0] for c in PIPELINE_CASES])
def test_pipeline_bad_input(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], case: str, setup: Setup, code: int, message: str
) -> None:
    argv = setup(workspace)
    before = folder_digest(workspace.root)
    capsys.readouterr()
    assert pipeline_main(argv) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("edge-pipeline: error: "), err
    assert message in err[0]
    assert folder_digest(workspace.root) == before, "files that existed before the command are byte-identical"


def test_a_few_bad_images_are_skipped_with_a_count(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    bag = workspace.images / "bag"
    truncated_png(bag / "truncated.png")
    (bag / "empty.jpg").write_bytes(b"")
    (bag / "notes.txt").write_text("not an image")
    huge_png(bag / "huge.png")
    before = folder_digest(workspace.images)
    output = workspace.root / "out"
    assert (
        pipeline_main(
            ["train", "--data", str(workspace.images), "--model", "mlp", "--epochs", "1", "--output", str(output)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "skipped 4 unreadable file(s)" in out
    assert folder_digest(workspace.images) == before
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["dataset"]["skipped"] == 4 and sum(metadata["dataset"]["sizes"].values()) == 36


RUNTIME_CASES: list[tuple[str, Setup, int, str]] = [
    (
        "missing model",
        lambda w: ["predict", str(w.root / "nope.tflite"), str(w.root / "a.png")],
        1,
        "no such model file or folder",
    ),
    ("missing image", lambda w: ["predict", str(w.folder), str(w.root / "missing.png")], 1, "no such file or folder"),
    (
        "not an image",
        lambda w: [(w.root / "notes.txt").write_text("hi"), "predict", str(w.folder), str(w.root / "notes.txt")][1:],
        1,
        "not an image edge_runtime reads",
    ),
    (
        "truncated image",
        lambda w: [truncated_png(w.root / "cut.png"), "predict", str(w.folder), str(w.root / "cut.png")][1:],
        1,
        "truncated or corrupt",
    ),
    (
        "empty image file",
        lambda w: [(w.root / "zero.png").write_bytes(b""), "predict", str(w.folder), str(w.root / "zero.png")][1:],
        1,
        "not an image edge_runtime reads",
    ),
    (
        "huge image",
        lambda w: [huge_png(w.root / "huge.png"), "predict", str(w.folder), str(w.root / "huge.png")][1:],
        1,
        "too large",
    ),
    (
        "text file named .tflite",
        lambda w: [
            (w.root / "m.tflite").write_text("not a model"),
            "predict",
            str(w.root / "m.tflite"),
            str(w.root / "a.png"),
        ][1:],
        1,
        "not a TFLite model",
    ),
    (
        "truncated model",
        lambda w: [
            (w.root / "cut.tflite").write_bytes((w.folder / "model_int8.tflite").read_bytes()[:3000]),
            "predict",
            str(w.root / "cut.tflite"),
            str(w.root / "a.png"),
        ][1:],
        1,
        "not a valid TFLite model",
    ),
    (
        "labels that do not fit",
        lambda w: [
            (w.root / "l.txt").write_text("a\nb\n"),
            "predict",
            str(w.folder),
            str(w.root / "a.png"),
            "--labels",
            str(w.root / "l.txt"),
        ][1:],
        1,
        "has 2 labels but the model has 10 outputs",
    ),
    (
        "missing labels file",
        lambda w: ["predict", str(w.folder), str(w.root / "a.png"), "--labels", str(w.root / "none.txt")],
        1,
        "labels file not found",
    ),
    (
        "empty folder",
        lambda w: [(w.root / "empty").mkdir(), "predict", str(w.folder), str(w.root / "empty")][1:],
        1,
        "folder holds no images",
    ),
    (
        "checksum mismatch",
        lambda w: [
            shutil.copy(w.folder / "model_dynamic.tflite", w.folder / "model_int8.tflite"),
            "predict",
            str(w.folder),
            str(w.root / "a.png"),
        ][1:],
        1,
        "do not match the sha256",
    ),
    (
        "corrupt metadata",
        lambda w: [(w.folder / "metadata.json").write_text("[1, 2"), "info", str(w.folder)][1:],
        1,
        "not valid JSON",
    ),
    (
        "newer schema",
        lambda w: [
            _edit_metadata(w.folder, lambda d: d.update(schema=7)),
            "predict",
            str(w.folder),
            str(w.root / "a.png"),
        ][1:],
        1,
        "newer than this version",
    ),
    (
        "zero top-k",
        lambda w: ["predict", str(w.folder), str(w.root / "a.png"), "--top-k", "0"],
        2,
        "must be at least 1",
    ),
    ("zero threads", lambda w: ["bench", str(w.folder), "--threads", "0"], 2, "must be at least 1"),
    (
        "zero input std",
        lambda w: ["predict", str(w.folder), str(w.root / "a.png"), "--input-std", "0"],
        2,
        "--input-std must not be 0",
    ),
    ("unknown backend", lambda w: ["info", str(w.folder), "--backend", "onnx"], 2, "invalid choice"),
    ("zero runs", lambda w: ["bench", str(w.folder), "--runs", "0"], 2, "must be at least 1"),
    ("no command", lambda w: [], 2, "required"),
]


@pytest.mark.parametrize(("case", "setup", "code", "message"), RUNTIME_CASES, ids=[c[0] for c in RUNTIME_CASES])
def test_runtime_bad_input(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], case: str, setup: Setup, code: int, message: str
) -> None:
    Image.fromarray(workspace.fashion[0][0][:, :, 0]).save(workspace.root / "a.png")
    argv = setup(workspace)
    before = folder_digest(workspace.root)
    capsys.readouterr()
    assert runtime_main(argv) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in err if line.startswith("edge-runtime: error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in "\n".join(err)
    assert folder_digest(workspace.root) == before


@pytest.mark.skipif(not CORAL.is_dir(), reason="../shared/third_party/coral is absent")
def test_runtime_unknown_custom_op(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (8, 8)).save(workspace.root / "a.png")
    assert runtime_main(["predict", str(CORAL / "invalid_custom_op.tflite"), str(workspace.root / "a.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot run this model" in err[0]


def test_runtime_refuses_a_model_that_is_not_a_classifier(
    two_output_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert runtime_main(["predict", str(two_output_model), str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 1 inputs and 2 outputs" in err[0]


def test_runtime_batch_keeps_good_predictions_and_reports_bad_images(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = workspace.root / "batch"
    batch.mkdir()
    for index in range(3):
        Image.fromarray(workspace.fashion[0][index][:, :, 0]).save(batch / f"good{index}.png")
    truncated_png(batch / "bad_truncated.png")
    (batch / "bad_empty.jpg").write_bytes(b"")
    assert runtime_main(["predict", str(workspace.folder), str(batch), "--json"]) == 1
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert sorted(Path(r["image"]).name for r in results if "top_k" in r) == ["good0.png", "good1.png", "good2.png"]
    # issue 11: failed images are in the JSON too, each with its error
    assert sorted(Path(r["image"]).name for r in results if "error" in r) == ["bad_empty.jpg", "bad_truncated.png"]
    assert (
        "bad_truncated.png" in captured.err
        and "bad_empty.jpg" in captured.err
        and "2 of 5 inputs failed" in captured.err
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["edge-pipeline", "train", "--epochs", "-3"], 2, "--epochs must be at least 1"),
        (["edge-pipeline", "evaluate", "/definitely/missing"], 1, "no such model folder"),
        (["edge-runtime", "predict", "/definitely/missing.tflite", "x.png"], 1, "no such model file"),
        (["edge-runtime", "bench", "/definitely/missing.tflite", "--runs", "-1"], 2, "must be at least 1"),
    ],
)
def test_installed_commands_exit_codes_without_traceback(argv: list[str], code: int, message: str) -> None:
    executable = Path(sys.executable).parent / argv[0]
    completed = subprocess.run([str(executable), *argv[1:]], capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == code
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_debug_flag_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline_main(["--debug", "evaluate", str(tmp_path / "ghost")]) == 1
    assert "Traceback" in capsys.readouterr().err


# --- interrupted runs ---------------------------------------------------------------------------


def _run_command(output: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "edge-pipeline"),
        "run",
        "--limit",
        "2000",
        "--epochs",
        "2",
        "--output",
        str(output),
        "--threads",
        "1",
        "--runs",
        "20",
        "--warmup",
        "2",
        "--rounds",
        "2",
        "--calibration-samples",
        "100",
        "--samples",
        "6",
    ]


def _interrupt_when(command: list[str], marker: str, signum: int, delay: float) -> tuple[int, str]:
    """Start `command`, wait until `marker` appears on stdout, then send `signum` after `delay` s."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            process.send_signal(signum)
            break
    _, err = process.communicate(timeout=300)
    assert any(marker in line for line in seen), "".join(seen) + err
    return process.returncode, err


@pytest.mark.slow
def test_interrupted_conversion_leaves_complete_files_and_rerun_finishes(tmp_path: Path) -> None:
    output = tmp_path / "interrupted"
    code, err = _interrupt_when(_run_command(output), "int8: calibrating", signal.SIGINT, 1.5)
    assert code == 130, err
    assert "interrupted during convert" in err and "Traceback" not in err
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["variants"] == {}, "the interrupted conversion committed nothing"
    hidden = [p.name for p in output.glob(".*") if p.name != ".lock"]  # the writers' lock stays; nothing else
    assert not list(output.glob("*.tflite")) and not hidden, "no partial or temporary files"
    from edge_runtime.model_folder import sha256_file

    for name, record in metadata["files"].items():
        assert sha256_file(output / name) == record["sha256"], name

    finished = subprocess.run(_run_command(output), capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert finished.returncode == 0, finished.stderr
    metadata = json.loads((output / "metadata.json").read_text())
    assert set(metadata["variants"]) == {"float32", "float16", "dynamic", "int8", "mixed"}
    assert (output / "report.md").is_file() and (output / "benchmark.json").is_file()


@pytest.mark.slow
def test_killed_training_leaves_no_half_written_folder(tmp_path: Path) -> None:
    output = tmp_path / "killed"
    code, err = _interrupt_when(_run_command(output), "epoch 1:", signal.SIGTERM, 0.2)
    assert code == 130, err
    assert "interrupted during train" in err
    # What is left is what resuming needs (the finished epochs' checkpoint) and the writers' lock: no model
    # file, no metadata.json, nothing a reader would take for a model folder.
    left = {p.name for p in output.iterdir()} if output.exists() else set()
    assert left <= {"checkpoint.npz", ".lock"}, sorted(left)


# --- fuzzing ------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_random_bytes_as_an_image_only_ever_raise_image_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.png"
    path.write_bytes(data)
    try:
        pixels = load_pixels(path, InputSpec(16, 16, 3))
    except ImageError:
        return
    assert pixels.shape == (16, 16, 3)


@FUZZ
@given(
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from(["L", "RGB", "RGBA", "P", "CMYK", "I;16", "I", "F", "1", "LA"]),
    st.integers(1, 64),
    st.integers(1, 64),
    st.sampled_from([1, 3]),
    st.booleans(),
)
def test_any_image_size_and_mode_becomes_the_model_shape(
    width: int, height: int, mode: str, target_w: int, target_h: int, channels: int, invert: bool
) -> None:
    image = Image.new("RGB", (width, height), (width % 256, height % 256, 99)).convert(mode)
    pixels = prepare_pixels(image, InputSpec(target_h, target_w, channels, invert=invert))
    assert pixels.shape == (target_h, target_w, channels) and pixels.dtype == np.uint8


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=24), st.integers(8, 10**6))
def test_damaged_models_only_ever_raise_model_error(
    trained_folder: Path, tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]], cut: int
) -> None:
    original = (trained_folder / "model_int8.tflite").read_bytes()
    data = bytearray(original[: max(8, min(cut, len(original)))])
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path_factory.mktemp("fuzz") / "damaged.tflite"
    path.write_bytes(bytes(data))
    try:
        from edge_runtime import Predictor

        Predictor(path).predict(np.full((28, 28), 77, np.uint8))
    except EdgeRuntimeError:
        return


@FUZZ
@given(st.binary(min_size=0, max_size=2048))
def test_random_bytes_as_a_model_only_ever_raise_model_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "random.tflite"
    path.write_bytes(data[:4] + b"TFL3" + data[4:])  # past the identifier check, into the flatbuffer verifier
    with pytest.raises(ModelError):
        load_interpreter(path)


def test_edge_runtime_is_runnable_from_a_copy_without_the_pipeline(trained_folder: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "edge_runtime", tmp_path / "edge_runtime")
    shutil.copytree(trained_folder, tmp_path / "model", ignore=shutil.ignore_patterns("model.keras"))
    Image.new("L", (28, 28), 200).save(tmp_path / "x.png")
    completed = subprocess.run(
        [sys.executable, "-m", "edge_runtime", "predict", "model", "x.png", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)[0]["image"] == "x.png"
