"""Bad input to edge-runtime: one clear line, the right exit code, nothing lost; a batch keeps its good
predictions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from edge_runtime.cli import main as runtime_main
from pipeline.surface.cli.app import main as pipeline_main
from tests.bad_files import Setup, Workspace, edit_metadata, huge_png, truncated_png
from tests.conftest import CORAL, folder_digest, requires_fashion_mnist

pytestmark = requires_fashion_mnist


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
            edit_metadata(w.folder, lambda d: d.update(schema=7)),
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
        "argument --input-std: must be above 0, got '0'",
    ),
    (
        "two input means",
        lambda w: ["predict", str(w.folder), str(w.root / "a.png"), "--input-mean", "1,2"],
        2,
        "argument --input-mean: wants one number or three (R,G,B), got 2",
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
        (["edge-pipeline", "train", "--epochs", "-3"], 2, "--epochs must be between 1 and 10000"),
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
