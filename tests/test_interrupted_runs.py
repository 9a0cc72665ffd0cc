"""Interrupted runs: Ctrl-C or SIGTERM in a stage leaves complete files (or only what resuming needs), and a
re-run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, requires_fashion_mnist

pytestmark = requires_fashion_mnist


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
    from edge_runtime.folder.reader import sha256_file

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
