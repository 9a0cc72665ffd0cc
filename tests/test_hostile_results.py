"""A folder forged consistently (its result files edited, their sha256 updated in metadata.json) passes the checksum
check; what its result files hold is still read as untrusted: a file of the wrong shape is one line, never a
KeyError traceback."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pipeline
from tests.conftest import ROOT, requires_fashion_mnist

SHIPPED = ROOT / "models" / "fashion-mnist-cnn"


def _forged(folder: Path, name: str, change: Callable[[dict], None]) -> None:
    data = json.loads((folder / name).read_text())
    change(data)
    content = json.dumps(data).encode()
    (folder / name).write_bytes(content)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["files"][name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (folder / "metadata.json").write_text(json.dumps(metadata))


def _drop_runs(data: dict) -> None:
    for variant in data["variants"].values():
        for stats in variant["threads"].values():
            stats.pop("runs")


CASES = [
    ("benchmark.json", _drop_runs, "benchmark.json: not what its stage writes (KeyError: 'runs')"),
    ("benchmark.json", lambda d: d.update(variants=[1, 2]), "benchmark.json: not what its stage writes"),
    ("drift.json", lambda d: d.update(variants={"float32": "x"}), "drift.json: not what its stage writes"),
]


@requires_fashion_mnist
@pytest.mark.parametrize(("name", "change", "message"), CASES, ids=["no runs", "a list", "a string"])
def test_a_result_file_of_the_wrong_shape_is_one_line(
    tmp_path: Path, name: str, change: Callable[[dict], None], message: str
) -> None:
    folder = tmp_path / "forged"
    shutil.copytree(SHIPPED, folder)
    _forged(folder, name, change)
    done = subprocess.run([sys.executable, "-m", "pipeline", "report", str(folder), "--samples", "0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and message in lines[0], done.stderr[-1500:]
    with pytest.raises(pipeline.FolderError, match=message.split(" (")[0]):
        handle = pipeline.ModelFolder(folder)
        handle.drift if name == "drift.json" else handle.latency  # noqa: B018 - reading it is the test
