"""Day two's smaller promises: data warnings when training, `run` stopping after a training that did not learn, and
`run` skipping a stage only when every file it would write is there and intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline
from pipeline.data.dataset import class_warnings
from pipeline.folder import FolderStore
from pipeline.progress import SilentReporter
from pipeline.store import stage_records as records
from pipeline.surface.cli import main
from pipeline.surface.keywords import bind
from pipeline.surface.session import stage_data
from pipeline.surface.stage_configs import convert_config, record_of
from tests.conftest import write_image_folder


def test_few_images_and_look_alike_class_names_are_warned_about() -> None:
    lines = class_warnings(["Tasche", "Tasche 👜", "Hut", "hut"], [3, 60, 60, 58])
    assert any("class 'Tasche' has 3 usable image(s), against 60" in line for line in lines)
    assert any("'Tasche' and 'Tasche 👜' differ only in case, spaces, punctuation or symbols" in line for line in lines)
    assert any("'Hut' and 'hut'" in line for line in lines)
    assert class_warnings(["a", "b"], [50, 60]) == []


@pytest.mark.slow
def test_a_stray_class_folder_is_named_when_training(
    tmp_path: Path, fashion_arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = fashion_arrays
    root = write_image_folder(tmp_path / "photos", images, labels, {8: "Tasche 👜", 1: "Hose"}, per_class=60)
    write_image_folder(tmp_path / "stray", images, labels, {8: "Tasche"}, per_class=3)
    (tmp_path / "stray" / "Tasche").rename(root / "Tasche")
    reporter = SilentReporter()
    pipeline.train(data=root, epochs=1, output=tmp_path / "model", reporter=reporter)
    warnings = [m for m in reporter.messages if m.startswith("warning:")]
    assert any("class 'Tasche' has 3 usable image(s)" in m for m in warnings), reporter.messages
    assert any("'Tasche' and 'Tasche 👜' differ only" in m for m in warnings), reporter.messages


@pytest.mark.slow
def test_run_stops_after_a_training_that_did_not_learn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):  # noise: nothing to learn, so any model ends at chance
        (tmp_path / "noise" / name).mkdir(parents=True)
        for index in range(40):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                tmp_path / "noise" / name / f"{index}.png"
            )
    argv = ["run", "--data", str(tmp_path / "noise"), "--epochs", "1", "--output", str(tmp_path / "model")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the model did not learn" in err and "pass --continue to go on anyway" in err
    assert not any(p.name.endswith(".tflite") for p in (tmp_path / "model").iterdir())  # nothing converted


# --- a stage is up to date only when every file it would write is there (issue #28) -----------------


def _drop_variant(name: str, delete: bool = True) -> Callable[[Path], None]:
    """The variant taken out of metadata.json (and its file deleted): what a careless teammate did."""

    def change(folder: Path) -> None:
        metadata = json.loads((folder / "metadata.json").read_text())
        file = metadata["variants"].pop(name)["file"]
        (folder / "metadata.json").write_text(json.dumps(metadata))
        if delete:
            (folder / file).unlink()

    return change


def _drop_file(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        metadata = json.loads((folder / "metadata.json").read_text())
        metadata["files"].pop(name)
        (folder / "metadata.json").write_text(json.dumps(metadata))
        (folder / name).unlink()

    return change


def _skipped_mixed(folder: Path) -> None:
    """mixed skipped by its last convert (no candidate met the target) and so absent: nothing to make again."""
    _drop_variant("mixed")(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["conversion"]["skipped"] = ["mixed: skipped, no candidate reached 99.9% agreement"]
    (folder / "metadata.json").write_text(json.dumps(metadata))


def _replaced(folder: Path) -> None:
    (folder / "model_float32.tflite").write_bytes((folder / "model_float16.tflite").read_bytes())


def _convert_record(folder: Path, precision: list[str] | None) -> tuple[FolderStore, dict, object]:
    """What `run`'s convert stage would record for these options: its config's record and its data."""
    asked = {"output": folder, "calibration_samples": 200, **({"precision": precision} if precision else {})}
    config = convert_config(folder, "run", bind("run", asked))
    return FolderStore(folder), record_of(config), stage_data("convert", config)


# (case, change after convert's record was stored, the precisions `run` asks for, up to date?)
RECORDS: list[tuple[str, Callable[[Path], None], list[str] | None, bool]] = [
    ("intact", lambda folder: None, None, True),
    ("intact, float32 asked", lambda folder: None, ["float32"], True),
    ("float32 out of metadata.json and deleted, float32 asked", _drop_variant("float32"), ["float32"], False),
    ("float32 out of metadata.json and deleted, every precision", _drop_variant("float32"), None, False),
    ("float32 out of metadata.json, its file kept", _drop_variant("float32", delete=False), ["float32"], False),
    ("float32 out of metadata.json and deleted, dynamic asked", _drop_variant("float32"), ["dynamic"], True),
    ("float32 replaced by another file", _replaced, ["float32"], False),
    ("quantization.json out of metadata.json and deleted", _drop_file("quantization.json"), None, False),
    ("mixed skipped by its last convert", _skipped_mixed, None, True),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "precision", "fresh"), RECORDS, ids=[c[0] for c in RECORDS])
def test_convert_is_up_to_date_only_when_every_variant_asked_for_is_there_and_intact(
    folder_copy: Path, case: str, change: Callable[[Path], None], precision: list[str] | None, fresh: bool
) -> None:
    """`run --precision float32` said "convert: up to date" with float32 out of metadata.json and its file gone."""
    store, options, data = _convert_record(folder_copy, precision)
    records.store(store, "convert", records.before("convert", options, store, data))
    change(folder_copy)
    assert (records.up_to_date("convert", options, store, data) is not None) == fresh


def test_a_variant_taken_out_is_converted_again_and_then_up_to_date(folder_copy: Path) -> None:
    """The whole turn `run` makes: not up to date, converted (float32 only: seconds), then up to date again."""
    store, options, data = _convert_record(folder_copy, ["float32"])
    records.store(store, "convert", records.before("convert", options, store, data))
    _drop_variant("float32")(folder_copy)
    assert records.up_to_date("convert", options, store, data) is None
    pipeline.convert(folder_copy, precision=["float32"], calibration_samples=200, progress=False)
    assert (folder_copy / "model_float32.tflite").is_file() and "float32" in store.load().variants
    assert records.up_to_date("convert", options, store, data) is not None
