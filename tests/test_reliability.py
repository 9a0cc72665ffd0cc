"""Bad input to edge-pipeline: one clear line, the right exit code, nothing lost."""

from __future__ import annotations

import json

import pytest

from pipeline.surface.cli.app import main as pipeline_main
from tests.bad_files import Setup, Workspace, class_folders, edit_metadata, huge_png, truncated_png
from tests.conftest import folder_digest, requires_fashion_mnist

pytestmark = requires_fashion_mnist


# --- the table ----------------------------------------------------------------------------------

PIPELINE_CASES: list[tuple[str, Setup, int, str]] = [
    # datasets
    ("missing data path", lambda w: ["train", "--data", str(w.root / "nope")], 1, "no such folder"),
    (
        "no class sub-folders",
        lambda w: ["train", "--data", str(class_folders(w.root / "flat", {}))],
        1,
        "has no class sub-folders",
    ),
    (
        "class folder without images",
        lambda w: ["train", "--data", str(class_folders(w.root / "d", {"a": 4, "b": 0}))],
        1,
        "class folder has no images",
    ),
    (
        "a single class",
        lambda w: ["train", "--data", str(class_folders(w.root / "d", {"only": 6}))],
        1,
        "has one class",
    ),
    (
        "too few images for the split",
        lambda w: ["train", "--data", str(class_folders(w.root / "d", {"a": 6, "b": 2}))],
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
    ("zero epochs", lambda w: ["train", "--epochs", "0"], 2, "--epochs must be between 1 and 10000"),
    ("negative batch", lambda w: ["train", "--batch-size", "-1"], 2, "--batch-size must be between 1 and 65536"),
    (
        "validation split out of range",
        lambda w: ["train", "--validation-split", "0.9"],
        2,
        "--validation-split must be above 0 and below 0.5",
    ),
    (
        "learning rate out of range",
        lambda w: ["train", "--learning-rate", "5"],
        2,
        "--learning-rate must be above 0 and below 1",
    ),
    ("not a number", lambda w: ["train", "--epochs", "many"], 2, "--epochs wants a whole number, got 'many'"),
    ("unknown option", lambda w: ["train", "--epoch", "3"], 2, "No such option"),
    ("unknown precision", lambda w: ["convert", str(w.folder), "--precision", "int4"], 2, "unknown precision 'int4'"),
    ("unknown io type", lambda w: ["convert", str(w.folder), "--io-type", "int16"], 2, "--io-type 'int16'"),
    (
        "too few calibration images",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "3"],
        2,
        "cannot calibrate int8 ranges",
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
        "--device 'ghost' is neither a device of benchmark.json nor an emulated Pi; measured here: none",
    ),
    (
        "calibration counts not numbers",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "100,x"],
        2,
        "--calibration-samples wants a whole number, got 'x'",
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
        "--min-agreement must be above 0 and at most 100, got 101",
    ),
    (
        "float share out of range",
        lambda w: ["run", "--max-float-share", "0"],
        2,
        "--max-float-share must be above 0 and at most 1, got 0",
    ),
    (
        "more calibration images than data",
        lambda w: ["convert", str(w.folder), "--calibration-samples", "90000"],
        1,
        "more than the 3600 training images",
    ),
    ("zero threads", lambda w: ["benchmark", str(w.folder), "--threads", "0"], 2, "--threads must be between 1 and 64"),
    (
        "threads not numbers",
        lambda w: ["benchmark", str(w.folder), "--threads", "a,b"],
        2,
        "--threads wants a whole number, got 'a'",
    ),
    ("zero runs", lambda w: ["benchmark", str(w.folder), "--runs", "0"], 2, "--runs must be between 1 and 100000"),
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
        "--threads must be between 1 and 64",
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
        lambda w: [edit_metadata(w.folder, lambda d: d.update(schema=99)), "evaluate", str(w.folder)][1:],
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
