"""Usage errors that need no data run everywhere, Fashion-MNIST installed or not (issue 10).

They are the cases of test_reliability's table whose setup touches no trained folder, image folder
or dataset arrays; test_reliability runs the whole table where Fashion-MNIST is installed.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pipeline.surface.cli.app import main as pipeline_main
from tests.bad_files import Setup, Workspace
from tests.conftest import folder_digest
from tests.test_reliability import PIPELINE_CASES

NEEDS_DATA = ("w.folder", "w.images", "w.fashion")
NO_DATA_CASES = [case for case in PIPELINE_CASES if not any(use in inspect.getsource(case[1]) for use in NEEDS_DATA)]


def test_the_usage_errors_are_among_them() -> None:
    names = {case[0] for case in NO_DATA_CASES}
    assert {"unknown model", "zero epochs", "unknown dataset", "negative batch", "unknown option"} <= names
    assert len(NO_DATA_CASES) >= 15


@pytest.mark.parametrize(("case", "setup", "code", "message"), NO_DATA_CASES, ids=[c[0] for c in NO_DATA_CASES])
def test_usage_errors_without_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, setup: Setup, code: int, message: str
) -> None:
    workspace = Workspace(tmp_path, tmp_path / "no-model", tmp_path / "no-images", ())
    argv = setup(workspace)
    before = folder_digest(tmp_path)
    capsys.readouterr()
    assert pipeline_main(argv) == code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("edge-pipeline: error: "), err
    assert message in err[0]
    assert folder_digest(tmp_path) == before
